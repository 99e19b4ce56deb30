"""What makes a report page readable without the code: human labels, a glossary of every metric, one colour per
cell type in every figure, and the small inline script that sorts and filters the tables (no network needed).
"""

from __future__ import annotations

from collections.abc import Mapping

LABELS: dict[str, str] = {
    "neuron_id": "neuron", "neuron": "neuron", "unit_id": "unit", "type": "cell type", "kind": "cell type",
    "mei_seed": "seed", "method_comment": "method", "ensemble_comment": "ensemble", "model_comment": "model",
    "objective_comment": "objective", "method_fn": "method function", "score": "score",
    "activation": "MEI activation", "best_natural": "best natural activation",
    "activation_ratio": "activation ratio", "transfer": "member agreement",
    "member_agreement": "member agreement", "held_out_transfer": "held-out transfer",
    "true_activation_ratio": "true activation ratio", "jitter_robustness": "jitter robustness",
    "peak_frequency": "peak frequency (cycles/pixel)", "rf_correlation": "RF correlation",
    "neurons": "neurons", "median_rf_correlation": "median RF correlation",
    "fraction_beating_best_natural": "fraction of MEIs beating the best natural image",
    "median_activation_ratio": "median activation ratio", "median_jitter_robustness": "median jitter robustness",
    "median_held_out_transfer": "median held-out transfer",
    "true_neurons_beating_best_natural": "fraction of true neurons beating their best natural image",
    "median_true_activation_ratio": "median true activation ratio", "targets_met": "all targets met",
    "fraction_3x_best_natural": "fraction of MEIs at 3x the best natural image",
    "true_fraction_3x_best_natural": "fraction of true neurons at 3x their best natural image",
    "lowest_type_median_rf_correlation": "lowest median RF correlation of a cell type",
    "median_mei_norm": "median MEI norm (L2)", "natural_image_median_norm": "median natural-image norm (L2)",
    "mei_norm_over_natural_norm": "largest MEI norm / median natural-image norm",
}
"""Column and figure names as a reader says them (the code's names are the keys)."""

KIND_LABELS: dict[str, str] = {"simple": "simple", "complex": "complex", "dog": "centre-surround"}
"""The demo population's cell types as a reader says them (``dog``: a difference of Gaussians)."""

KIND_COLOURS: dict[str, str] = {"simple": "#1f77b4", "complex": "#ff7f0e", "dog": "#2ca02c", "all": "#555555"}
"""One colour per cell type, the same in every figure and in the table."""

GLOSSARY: dict[str, str] = {
    "score": "the method's score: the model's response to the final MEI (for gradient ascent, the objective).",
    "MEI activation": "the model's response to the MEI.",
    "best natural activation": "the model's largest response over the natural (training) images.",
    "activation ratio": "MEI activation / best natural activation, for the model the MEI was made on; above 1 "
                        "the MEI drives the neuron more than any natural image (Walker et al. 2019).",
    "member agreement": "the activation ratio of the MEI for each member of the ensemble it was made on, "
                        "averaged: do the models that made it agree? (The report card's 'transfer' column.)",
    "held-out transfer": "for an MEI made on one member alone: its activation ratio on the members it never saw "
                         "over its activation ratio on its own member; 1 means it drives them as well, far below "
                         "(the target is 0.8) it exploits that one model rather than the neuron.",
    "true activation ratio": "the true neuron's rate for the MEI over its rate for its best natural image "
                             "(demo only: the truth is known).",
    "jitter robustness": "the mean activation under shifts of the MEI by up to 2 pixels, over the unshifted "
                         "activation; 1 means shifts do not matter.",
    "peak frequency (cycles/pixel)": "the spatial frequency where the MEI's radially averaged power spectrum "
                                     "peaks.",
    "RF correlation": "the correlation of the MEI with the neuron's true receptive field (best over phase for "
                      "complex cells); 1 is a perfect match (demo only).",
    "cell type": "simple (a Gabor filter), complex (the energy of a quadrature pair of Gabors) or "
                 "centre-surround (a difference of Gaussians).",
    "Poisson loss": "the mean Poisson negative log-likelihood of the spike counts, without the constant "
                    "log(count!) term; that is why it can be below 0. Lower is better.",
}
"""Every metric the pages show, defined in a sentence (keys are the labels of :data:`LABELS`)."""


def label(name: str) -> str:
    """The reader's name of a column or metric: :data:`LABELS`, else the name with spaces for underscores
    (``median_rf_correlation_dog`` -> ``median RF correlation, centre-surround cells``)."""
    for kind in KIND_LABELS:
        if name.endswith(f"_{kind}") and name[:-len(kind) - 1] in LABELS:
            return f"{LABELS[name[:-len(kind) - 1]]}, {KIND_LABELS[kind]} cells"
    return LABELS.get(name, name.replace("_", " "))


def kind_label(kind: str) -> str:
    """The reader's name of a cell type (``dog`` -> ``centre-surround``)."""
    return KIND_LABELS.get(kind, kind)


def glossary_html(names: Mapping[str, str] | None = None) -> str:
    """A definition list of the metrics (all of :data:`GLOSSARY`, or ``names``: label -> definition)."""
    import html

    entries = GLOSSARY if names is None else names
    items = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in entries.items())
    return f"<dl class='glossary'>{items}</dl>"


STYLE = (
    "body{font-family:sans-serif;max-width:1300px;margin:auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "th{background:#f0f0f0;cursor:pointer;user-select:none}th[data-order=asc]::after{content:' \\25B2'}"
    "th[data-order=desc]::after{content:' \\25BC'}td.flag{background:#fde0dc;color:#a00}"
    "td.met{color:#070}td.missed{color:#a00;font-weight:bold}img{max-width:100%}"
    "figcaption{font-size:13px;color:#444;max-width:1000px}.filter{margin:4px 0}"
    "dl.glossary dt{font-weight:bold;margin-top:4px}dl.glossary dd{margin-left:1.5em}"
    "code.command{background:#f4f4f4;padding:2px 6px;display:inline-block}"
)

ERROR_TRAP = ("window.addEventListener('error',function(e){var r=document.documentElement;"
              "r.dataset.jsErrors=(r.dataset.jsErrors||'')+e.message+';'});")
"""Runs first: any script error of the page is written into ``<html data-js-errors=...>`` (the browser test
reads it)."""

TABLE_SCRIPT = """
(function(){
  function key(cell){var v=cell.getAttribute('data-value');if(v===null)v=cell.textContent;
    var n=parseFloat(v);return isNaN(n)?v.toLowerCase():n;}
  function compare(a,b){if(typeof a===typeof b)return a<b?-1:a>b?1:0;return typeof a==='number'?-1:1;}
  function sort(table,column,order){
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(r,s){var c=compare(key(r.cells[column]),key(s.cells[column]));return order==='desc'?-c:c;});
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      if(i===column)th.setAttribute('data-order',order);else th.removeAttribute('data-order');});
  }
  function filter(table,text){
    text=text.toLowerCase();var shown=0;
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
      var hit=r.textContent.toLowerCase().indexOf(text)>=0;r.style.display=hit?'':'none';if(hit)shown++;});
    table.setAttribute('data-shown',shown);
  }
  var tables=document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables,function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.title='click to sort';
      th.addEventListener('click',function(){sort(table,i,th.getAttribute('data-order')==='asc'?'desc':'asc');});});
    var input=document.getElementById(table.id+'-filter');
    if(input)input.addEventListener('input',function(){filter(table,input.value);});
  });
  // report.html#sort=<column label>:<asc|desc>&filter=<text> opens the first sortable table sorted and filtered
  var params={};location.hash.replace(/^#/,'').split('&').forEach(function(p){
    var i=p.indexOf('=');if(i>0)params[p.slice(0,i)]=decodeURIComponent(p.slice(i+1));});
  if(tables.length&&params.sort){
    var parts=params.sort.split(':'),heads=tables[0].tHead.rows[0].cells;
    for(var i=0;i<heads.length;i++)if(heads[i].textContent===parts[0])sort(tables[0],i,parts[1]||'asc');}
  if(tables.length&&params.filter){var input=document.getElementById(tables[0].id+'-filter');
    if(input)input.value=params.filter;filter(tables[0],params.filter);}
  document.documentElement.setAttribute('data-ready','1');
})();
"""
"""Click a column head to sort (again to reverse); type in the box above a table to filter its rows."""
