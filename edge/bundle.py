"""The model bundle: the portable artefact that train/ hands to edge/.

A bundle is a directory:

- ``manifest.json``: what the network expects and promises (muscles and the
  subject's coordinates in order, the coordinates the network reads and those
  whose moments the muscles balance, the muscles reported by default, window,
  sample rate, lookahead, input features and normalisation, output range,
  architecture, training metrics) and the SHA-256 of every other file;
- ``model.pt2``: the network as a ``torch.export`` ExportedProgram (batch 1, fixed
  window), raw SI features (1, W, 3 J) of J input coordinates -> activations (1, M);
- ``model.onnx``: the same function for ONNX Runtime, its last GRU layer
  computing only the time step the head reads (edge/gru_rewrite.py);
- ``subject.json``: the subject it was trained with (``calib.Subject``).

Loading validates everything before any weight is touched, and refuses with a
message that says what is wrong and what to do. ``torch.export.load`` may
unpickle payloads that its writer chose to pickle (tensor subclasses, opaque
constants, sample inputs it cannot read safely); ``Bundle.load_program`` first
audits the archive and refuses any such payload, so loading a bundle never
unpickles an arbitrary object.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from calib import Subject, SubjectError, load_subject
from calib.json_file import Fields, Messages
from edge.derivatives import DERIVATIVE_TAPS, input_feature_names

if TYPE_CHECKING:
    from torch.export import ExportedProgram

SCHEMA_VERSION = 2
"""Bundle layout version; a loader refuses any other."""

MANIFEST_FILE = "manifest.json"
PROGRAM_FILE = "model.pt2"
ONNX_FILE = "model.onnx"
SUBJECT_FILE = "subject.json"
BUNDLE_FILES = (PROGRAM_FILE, ONNX_FILE, SUBJECT_FILE)
"""Files every bundle holds besides the manifest, each hashed in ``files``."""

ONNX_INPUT_NAME = "x"
ONNX_OUTPUT_NAME = "activation"

PACKAGE_NAME = "mjca-edge"
DEFAULT_BUNDLE_DIR = Path(__file__).resolve().parent / "default_bundle"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_MESSAGES = Messages(label="manifest {path}", wrong="{label} must be {expected}, got {got}")


class BundleError(ValueError):
    """A bundle is missing, damaged or incompatible; the message says what to do."""


def package_version() -> str:
    """The installed mjca-edge version (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """The parsed, validated ``manifest.json``.

    ``window`` feature rows per input at ``sample_rate_hz``; the answer belongs
    to the sample ``lookahead`` model steps before the newest one;
    ``input_mean``/``input_std`` are the normalisation baked into the network
    (informational: every exported form takes raw features); ``output_range`` is
    (lo, hi) per muscle, the activations the network was trained to stay within.
    """

    schema_version: int
    package_version: str
    muscles: tuple[str, ...]
    joints: tuple[str, ...]
    window: int
    sample_rate_hz: float
    lookahead: int
    derivative_taps: int
    input_features: tuple[str, ...]
    input_coordinates: tuple[str, ...]
    balanced_coordinates: tuple[str, ...]
    report_muscles: tuple[str, ...]
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    output_range: tuple[tuple[float, float], ...]
    architecture: Mapping[str, Any]
    metrics: Mapping[str, Any]
    files: Mapping[str, str]
    created: str
    tensorrt: Mapping[str, Any] = field(default_factory=dict)
    """Optional TensorRT settings the exporter recommends (edge.tensorrt_cache)."""
    exporter: Mapping[str, Any] = field(default_factory=dict)
    """Optional: what wrote the files (torch version, ONNX opset), for diagnosis."""
    max_activation_age_ms: float | None = None
    """Optional: an Estimate whose activations are older than this carries ACTIVATION_STALE
    (None: the runtime's default, three model periods)."""

    def __post_init__(self) -> None:
        for name in ("architecture", "metrics", "files", "tensorrt", "exporter"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def n_muscles(self) -> int:
        return len(self.muscles)

    @property
    def lookahead_s(self) -> float:
        """How late an answer is, in s: ``lookahead`` model steps."""
        return self.lookahead / self.sample_rate_hz

    def to_dict(self) -> dict[str, Any]:
        data = {
            "schema_version": self.schema_version,
            "package_version": self.package_version,
            "muscles": list(self.muscles),
            "joints": list(self.joints),
            "window": self.window,
            "sample_rate_hz": self.sample_rate_hz,
            "lookahead": self.lookahead,
            "derivative_taps": self.derivative_taps,
            "input_features": list(self.input_features),
            "input_coordinates": list(self.input_coordinates),
            "balanced_coordinates": list(self.balanced_coordinates),
            "report_muscles": list(self.report_muscles),
            "input_mean": list(self.input_mean),
            "input_std": list(self.input_std),
            "output_range": [list(r) for r in self.output_range],
            "architecture": _plain(self.architecture),
            "metrics": _plain(self.metrics),
            "files": dict(self.files),
            "created": self.created,
        }
        for optional in ("tensorrt", "exporter"):
            if getattr(self, optional):
                data[optional] = _plain(getattr(self, optional))
        if self.max_activation_age_ms is not None:
            data["max_activation_age_ms"] = self.max_activation_age_ms
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Validate parsed JSON; raises ``BundleError`` naming the bad key."""
        if not isinstance(data, Mapping):
            raise BundleError(f"the manifest must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"bundle schema version {version!r} is not supported by this mjca-edge "
                f"({package_version()}, schema {SCHEMA_VERSION}): re-export the bundle with "
                f"this version (train-export RUN -o BUNDLE/) or install the mjca-edge that wrote it"
            )
        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise BundleError(
                f"the manifest lacks {', '.join(missing)}: the bundle is incomplete; re-export it"
            )
        manifest = Fields(data, BundleError, messages=MANIFEST_MESSAGES)
        written_by = manifest.string("package_version")
        if _major(written_by) != _major(package_version()):
            raise BundleError(
                f"the bundle was written by mjca-edge {written_by}, this is {package_version()}: "
                f"major versions differ; re-export the bundle with this version"
            )
        muscles = manifest.names("muscles")
        joints = manifest.names("joints")
        window = manifest.integer("window", at_least=1)
        lookahead = manifest.integer("lookahead", at_least=0)
        if lookahead >= window:
            raise BundleError(f"manifest lookahead {lookahead} must be below the window {window}")
        taps = manifest.integer("derivative_taps", at_least=1)
        if taps != DERIVATIVE_TAPS:
            raise BundleError(
                f"the bundle was trained on {taps}-sample derivative stencils, this runtime "
                f"computes {DERIVATIVE_TAPS}: its inputs would differ from training; re-export "
                f"with this version"
            )
        inputs = manifest.names("input_coordinates")
        balanced = manifest.names("balanced_coordinates")
        for key, names in (("input_coordinates", inputs), ("balanced_coordinates", balanced)):
            unknown = [name for name in names if name not in joints]
            if unknown:
                raise BundleError(
                    f"manifest {key} {unknown} are not among its joints {list(joints)}; "
                    "re-export the bundle"
                )
        features = manifest.names("input_features")
        if features != input_feature_names(inputs):
            raise BundleError(
                f"manifest input_features {list(features)} differ from what this runtime "
                f"computes for {list(inputs)} ({list(input_feature_names(inputs))}): re-export "
                "the bundle with this version"
            )
        report = manifest.names("report_muscles")
        unknown = [name for name in report if name not in muscles]
        if unknown or not report:
            raise BundleError(
                f"manifest report_muscles {list(report)} must be a non-empty subset of its "
                f"muscles ({unknown} are not): re-export the bundle"
            )
        mean = manifest.vector("input_mean", len(features))
        std = manifest.vector("input_std", len(features))
        if min(std) <= 0:
            raise BundleError("manifest input_std must be strictly positive")
        return cls(
            schema_version=SCHEMA_VERSION,
            package_version=written_by,
            muscles=muscles,
            joints=joints,
            window=window,
            sample_rate_hz=manifest.number("sample_rate_hz", positive=True),
            lookahead=lookahead,
            derivative_taps=taps,
            input_features=features,
            input_coordinates=inputs,
            output_range=_ranges(manifest, len(muscles)),
            balanced_coordinates=balanced,
            report_muscles=report,
            input_mean=mean,
            input_std=std,
            architecture=manifest.mapping("architecture").as_dict(),
            metrics=manifest.mapping("metrics").as_dict(),
            files=_files(manifest),
            created=manifest.string("created"),
            tensorrt=manifest.mapping("tensorrt").as_dict() if "tensorrt" in manifest else {},
            exporter=manifest.mapping("exporter").as_dict() if "exporter" in manifest else {},
            max_activation_age_ms=(
                manifest.number("max_activation_age_ms", positive=True)
                if "max_activation_age_ms" in manifest
                else None
            ),
        )


_REQUIRED_KEYS = (
    "schema_version",
    "package_version",
    "muscles",
    "joints",
    "window",
    "sample_rate_hz",
    "lookahead",
    "derivative_taps",
    "input_features",
    "input_coordinates",
    "balanced_coordinates",
    "report_muscles",
    "input_mean",
    "input_std",
    "output_range",
    "architecture",
    "metrics",
    "files",
    "created",
)


@dataclass(frozen=True)
class Bundle:
    """A validated bundle: ``manifest``, ``subject`` and the ``directory`` holding the files."""

    directory: Path
    manifest: Manifest
    subject: Subject
    digest: str
    """SHA-256 of ``manifest.json``, which hashes every other file: the bundle's identity."""

    @property
    def program_path(self) -> Path:
        return self.directory / PROGRAM_FILE

    @property
    def onnx_path(self) -> Path:
        return self.directory / ONNX_FILE

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(1, window, 3 J): the one input shape every backend takes."""
        return (1, self.manifest.window, len(self.manifest.input_features))

    def load_program(self) -> ExportedProgram:
        """The ExportedProgram of ``model.pt2``, on the CPU, after a no-pickle audit."""
        import torch

        audit_program_archive(self.program_path)
        try:
            program = torch.export.load(self.program_path)
        except Exception as exc:  # torch raises many types for a bad archive
            written = self.manifest.exporter.get("torch", "an unrecorded version")
            raise BundleError(
                f"{self.program_path} (written by torch {written}) could not be loaded by torch "
                f"{torch.__version__} ({type(exc).__name__}: {exc}); re-export the bundle with "
                f"torch {torch.__version__}, or use the onnxruntime backend"
            ) from exc
        user_inputs = set(program.graph_signature.user_inputs)
        shapes = [
            tuple(n.meta["val"].shape)
            for n in program.graph.nodes
            if n.op == "placeholder" and n.name in user_inputs
        ]
        check_model_input(self, shapes[0] if len(shapes) == 1 else tuple(shapes), PROGRAM_FILE)
        return program


def check_model_input(bundle: Bundle, shape: tuple, model_file: str) -> None:
    """Refuse a model whose fixed input shape is not the manifest's (1, window, features)."""
    fixed = tuple(d if isinstance(d, int) else None for d in shape)
    expected = bundle.input_shape
    if len(fixed) != len(expected) or any(
        d is not None and d != e for d, e in zip(fixed, expected)
    ):
        window = fixed[1] if len(fixed) == 3 else "?"
        raise BundleError(
            f"the manifest of {bundle.directory} says window {expected[1]} ({expected}), but "
            f"{model_file} takes inputs of shape {shape} (window {window}): the manifest does "
            f"not belong to this model; re-export the bundle"
        )


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle directory; raises ``BundleError`` saying what to do."""
    directory = Path(path)
    if not directory.is_dir():
        raise BundleError(
            f"bundle directory {directory} does not exist: export one with "
            f"`train-export RUN -o {directory}` or pass --bundle"
        )
    manifest_path = directory / MANIFEST_FILE
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"{manifest_path} cannot be read ({exc.strerror}): {directory} is not a bundle"
        ) from exc
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"{manifest_path} is not valid JSON ({exc}); re-export the bundle"
        ) from exc
    try:
        manifest = Manifest.from_dict(data)
    except BundleError as exc:
        raise BundleError(f"{manifest_path}: {exc}") from exc
    _check_hashes(directory, manifest)
    try:
        subject = load_subject(directory / SUBJECT_FILE)
    except SubjectError as exc:
        raise BundleError(f"the bundle's subject is invalid: {exc}") from exc
    _check_subject(subject, manifest, directory)
    return Bundle(directory, manifest, subject, hashlib.sha256(raw).hexdigest())


def default_bundle_path() -> Path:
    """The bundle shipped inside the package (built by scripts/build_default_bundle.py)."""
    return DEFAULT_BUNDLE_DIR


def audit_program_archive(path: str | Path) -> None:
    """Refuse a ``.pt2`` archive whose loading would unpickle anything but plain tensors.

    ``torch.export.save`` writes weights and constants as raw bytes plus JSON
    metadata unless a tensor is a subclass (then it pickles it); opaque and
    script objects are always pickled; sample inputs are a ``torch.save`` of
    tensors that ``torch.export.load`` reads with ``weights_only=True`` and, if
    that fails, retries unsafely. This check rejects every such case up front.
    """
    import torch

    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(
            f"{path} is not a torch.export archive ({exc}); re-export the bundle"
        ) from exc
    with archive:
        names = archive.namelist()
        for name in names:
            parts = name.split("/", 1)
            inner = parts[1] if len(parts) == 2 else ""
            if (
                not inner.startswith(_ALLOWED_ARCHIVE_PREFIXES)
                and inner not in _ALLOWED_ARCHIVE_FILES
            ):
                raise BundleError(
                    f"{path} holds {name!r}, which a plain torch.export.save never writes "
                    f"(legacy or executable payload): refusing to load it; re-export the bundle"
                )
            if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(
                "_config.json"
            ):
                _audit_payload_config(path, name, json.loads(archive.read(name)))
            if inner.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception as exc:
                    raise BundleError(
                        f"{path}: sample inputs {name!r} are not plain tensors ({exc}); "
                        f"refusing to unpickle them; re-export the bundle"
                    ) from exc


_ALLOWED_ARCHIVE_PREFIXES = (
    "models/",
    "data/weights/",
    "data/constants/",
    "data/sample_inputs/",
    ".data/",
)
_ALLOWED_ARCHIVE_FILES = ("archive_format", "archive_version", "byteorder")


def _audit_payload_config(path: Path, name: str, config: Any) -> None:
    entries = config.get("config", {}) if isinstance(config, Mapping) else None
    if not isinstance(entries, Mapping):
        raise BundleError(f"{path}: {name!r} is malformed; re-export the bundle")
    for fqn, entry in entries.items():
        pickled = not isinstance(entry, Mapping) or entry.get("use_pickle", True)
        file_name = entry.get("path_name", "") if isinstance(entry, Mapping) else ""
        if pickled or not str(file_name).startswith(("weight_", "tensor_")):
            raise BundleError(
                f"{path}: {fqn!r} is stored as a pickled object, which this runtime never "
                f"loads; export the network with plain tensors (train-export)"
            )


def _check_hashes(directory: Path, manifest: Manifest) -> None:
    listed = set(manifest.files)
    absent = [name for name in BUNDLE_FILES if name not in listed]
    if absent:
        raise BundleError(
            f"{directory / MANIFEST_FILE} does not hash {', '.join(absent)}: re-export the bundle"
        )
    for name, expected in manifest.files.items():
        file_path = directory / name
        if Path(name).name != name:
            raise BundleError(f"manifest file entry {name!r} must be a plain file name")
        if not file_path.is_file():
            raise BundleError(
                f"{file_path} is missing: copy the whole bundle directory, or re-export it"
            )
        actual = sha256_file(file_path)
        if actual != expected:
            raise BundleError(
                f"{file_path} does not match its manifest hash (expected {expected[:12]}…, "
                f"got {actual[:12]}…): the file was changed or damaged in transit; copy the "
                f"bundle again or re-export it"
            )


def _check_subject(subject: Subject, manifest: Manifest, directory: Path) -> None:
    if subject.muscle_names != manifest.muscles:
        raise BundleError(
            f"{directory / SUBJECT_FILE} has muscles {list(subject.muscle_names)} but the network "
            f"answers {list(manifest.muscles)}: the subject does not belong to this network; "
            f"re-export the bundle with the subject it was trained with"
        )
    if subject.coordinates != manifest.joints:
        raise BundleError(
            f"{directory / SUBJECT_FILE} has joints {list(subject.coordinates)} but the network "
            f"was trained on {list(manifest.joints)}: re-export the bundle with its own subject"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _ranges(manifest: Fields, n: int) -> tuple[tuple[float, float], ...]:
    value = manifest.value("output_range")
    ok = isinstance(value, list) and len(value) == n
    ok = ok and all(
        isinstance(r, list)
        and len(r) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
        and all(math.isfinite(v) for v in r)
        and r[0] <= r[1]
        for r in value
    )
    if not ok:
        raise BundleError(
            f"manifest output_range must hold one [lo, hi] pair (lo <= hi) per muscle ({n}), "
            f"got {value!r}"
        )
    return tuple((float(lo), float(hi)) for lo, hi in value)


def _files(manifest: Fields) -> dict[str, str]:
    files = manifest.mapping("files")
    digests = files.as_dict()
    for name, digest in digests.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise files.fail(name, "a hex SHA-256", digest)
    return digests


__all__ = [
    "BUNDLE_FILES",
    "MANIFEST_FILE",
    "ONNX_FILE",
    "ONNX_INPUT_NAME",
    "ONNX_OUTPUT_NAME",
    "PROGRAM_FILE",
    "SCHEMA_VERSION",
    "SUBJECT_FILE",
    "Bundle",
    "BundleError",
    "Manifest",
    "audit_program_archive",
    "default_bundle_path",
    "load_bundle",
    "package_version",
    "sha256_file",
]
