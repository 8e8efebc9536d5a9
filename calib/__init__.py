"""calib: the subject (segments, joints, muscles, paths) and the sensors as worn, in validated
JSON."""

from calib.coordinates import (
    ACTIVATION_MAX,
    ACTIVATION_MIN,
    COORDINATES,
    JOINT_NAMES,
    PAPER_MUSCLES,
    SAGITTAL_COORDINATES,
    SAGITTAL_INDEX,
    SEGMENT_NAMES,
    full_pose,
)
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
    "ACTIVATION_MAX",
    "ACTIVATION_MIN",
    "COORDINATES",
    "JOINT_NAMES",
    "PAPER_MUSCLES",
    "SAGITTAL_COORDINATES",
    "SAGITTAL_INDEX",
    "SEGMENT_NAMES",
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
    "full_pose",
    "load_sensors",
    "load_subject",
]
