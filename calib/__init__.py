"""calib: the subject (segments, muscles, paths) and the sensors as worn, in validated JSON."""

from calib.sensors import Channel, SensorError, SensorMap, load_sensors
from calib.subject import (
    Body,
    Joint,
    Muscle,
    MuscleArrays,
    PathPolynomial,
    Segment,
    Subject,
    SubjectError,
    default_subject,
    load_subject,
)

__all__ = [
    "Body",
    "Channel",
    "Joint",
    "Muscle",
    "MuscleArrays",
    "PathPolynomial",
    "Segment",
    "SensorError",
    "SensorMap",
    "Subject",
    "SubjectError",
    "default_subject",
    "load_sensors",
    "load_subject",
]
