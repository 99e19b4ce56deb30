"""Analyses of finished MEIs, with no database: the report card's metrics (:mod:`~mei.analysis.report_card`) and
spatial-frequency spectra (:mod:`~mei.analysis.spectra`)."""
