"""meitorch tools: schedules for any numeric config value, and generative transformations."""

from .schedules import LinearSchedule, OctaveSchedule, RandomSchedule, Schedule
from .transformations import GenerativeConvNet

__all__ = ["Schedule", "LinearSchedule", "OctaveSchedule", "RandomSchedule", "GenerativeConvNet"]
