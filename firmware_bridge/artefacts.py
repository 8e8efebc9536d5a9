"""Render the protocol table into PROTOCOL.md's tables and the C header's generated block.

Both files keep hand-written prose around one generated block between marker
lines; `splice` replaces that block, `stale_artefacts` lists the files whose
block differs from what `protocol.py` generates now.
"""

from __future__ import annotations

import re
from pathlib import Path

from firmware_bridge import protocol as P

PACKAGE_DIR = Path(__file__).resolve().parent
PROTOCOL_MD = PACKAGE_DIR / "PROTOCOL.md"
C_HEADER = PACKAGE_DIR / "c" / "mjca_bridge.h"

_SOURCE_NOTE = (
    "generated from firmware_bridge/protocol.py by scripts/generate_protocol_artefacts.py"
)
MD_BEGIN = f"<!-- BEGIN GENERATED: {_SOURCE_NOTE}; do not edit by hand -->"
MD_END = "<!-- END GENERATED -->"
C_BEGIN = f"/* BEGIN GENERATED: {_SOURCE_NOTE}; do not edit by hand */"
C_END = "/* END GENERATED */"

_ARRAY_LIMITS = {
    "n_channels": "MJB_MAX_CHANNELS",
    "n_joints": "MJB_MAX_CHANNELS",
    "n_muscles": "MJB_MAX_MUSCLES",
    "n_torques": "MJB_MAX_TORQUES",
}


def snake(name: str) -> str:
    """JointSample -> joint_sample."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _field_size(f: P.Field) -> int:
    return P.WIRE_TYPES[f.wire_type][1]


def _offsets(fields: tuple[P.Field, ...]) -> list[tuple[int, P.Field]]:
    out, offset = [], 0
    for f in fields:
        out.append((offset, f))
        offset += _field_size(f)
    return out


# -- C ----------------------------------------------------------------------------------
_ASCII = str.maketrans({"µ": "u", "τ": "tau", "→": "->", "ᵀ": "^T", "·": "*", "≤": "<="})


def render_c_block() -> str:
    """The C header's generated block, plain ASCII for any firmware toolchain."""
    lines = [
        f"#define MJB_VERSION_MAJOR {P.VERSION_MAJOR}u",
        f"#define MJB_VERSION_MINOR {P.VERSION_MINOR}u",
        f"#define MJB_MAGIC 0x{P.MAGIC:04X}u /* bytes 'M' 'J' */",
        f"#define MJB_CRC_SIZE {P.CRC_SIZE}u /* {P.CRC_NAME}, little-endian after the payload */",
        f'#define MJB_CRC_CHECK_VALUE 0x{P.CRC_CHECK_VALUE:08X}u /* CRC of "123456789" */',
        f"#define MJB_HEADER_SIZE {P.HEADER_SIZE}u",
        f"#define MJB_MAX_CHANNELS {P.MAX_CHANNELS}u",
        f"#define MJB_MAX_MUSCLES {P.MAX_MUSCLES}u",
        f"#define MJB_MAX_NAME_BYTES {P.MAX_NAME_BYTES}u",
        f"#define MJB_MAX_TORQUES {P.MAX_TORQUES}u",
        f"#define MJB_MAX_FRAME_SIZE {P.MAX_FRAME_SIZE}u /* header + payload + CRC */",
        (
            f"#define MJB_MAX_ENCODED_FRAME_SIZE {P.MAX_ENCODED_FRAME_SIZE}u "
            "/* after COBS, with the delimiter */"
        ),
        f"#define MJB_ROLE_DEVICE {P.ROLE_DEVICE}u",
        f"#define MJB_ROLE_HOST {P.ROLE_HOST}u",
        f"#define MJB_ENCODING_RADIANS {P.ENCODING_RADIANS}u",
        f"#define MJB_ENCODING_COUNTS {P.ENCODING_COUNTS}u",
        f"#define MJB_DEFAULT_HEARTBEAT_PERIOD_MS {P.DEFAULT_HEARTBEAT_PERIOD_MS}u",
        f"#define MJB_DEFAULT_HOST_TIMEOUT_MS {P.DEFAULT_HOST_TIMEOUT_MS}u",
        f"#define MJB_DEFAULT_MAX_ESTIMATE_AGE_MS {P.DEFAULT_MAX_ESTIMATE_AGE_MS}u",
        "",
        "/* Header field offsets (bytes from the frame's start, after COBS decoding). */",
    ]
    for offset, f in _offsets(P.HEADER):
        lines.append(f"#define MJB_HEADER_OFFSET_{f.name.upper()} {offset}u")
    lines += ["", "/* Message types. */"]
    for m in P.MESSAGES:
        lines.append(f"#define MJB_MSG_{snake(m.name).upper()} 0x{m.type_id:02X}u")
    for m in P.MESSAGES:
        prefix = f"MJB_{snake(m.name).upper()}"
        lines += ["", f"/* {m.name} payload offsets; arrays follow the fixed part in order. */"]
        for offset, f in _offsets(m.fixed_fields):
            lines.append(f"#define {prefix}_OFFSET_{f.name.upper()} {offset}u")
        lines.append(f"#define {prefix}_FIXED_SIZE {m.fixed_size}u")
        if m.tail_fields:
            lines.append(f"#define {prefix}_TAIL_SIZE {m.tail_size}u /* fields after the arrays */")
        for f in m.fields:
            if f.since_minor:
                lines.append(
                    f"#define {prefix}_{f.name.upper()}_BEFORE_1_{f.since_minor} "
                    f"{f.default}u /* its value in frames of minor < {f.since_minor} */"
                )
    lines += ["", "/* Estimate status bits. */"]
    for flag in P.ESTIMATE_STATUS_FLAGS:
        lines.append(f"#define MJB_STATUS_{flag.name} (1u << {flag.bit})")
    lines.append(
        f"#define MJB_STATUS_UNUSABLE_MASK 0x{P.STATUS_UNUSABLE_MASK:04X}u "
        "/* an Estimate with any of these must not be applied */"
    )
    lines.append(
        f"#define MJB_STATUS_KNOWN_MASK 0x{P.STATUS_KNOWN_MASK:04X}u "
        "/* bits this version defines; any other bit: must not apply */"
    )
    lines += [
        "",
        "/* Why a decoder dropped a candidate frame (index into mjb_decoder.errors). */",
        "typedef enum {",
        "    MJB_ERR_NONE = 0,",
    ]
    for kind, doc in P.ERROR_KINDS:
        lines.append(f"    MJB_ERR_{kind.upper()}, /* {doc} */")
    lines += ["    MJB_ERR_COUNT", "} mjb_error;"]
    for m in P.MESSAGES:
        lines += _render_c_struct(m)
    return ("\n".join(lines) + "\n").translate(_ASCII)


def _render_c_struct(m: P.MessageLayout) -> list[str]:
    lines = [
        "",
        f"/* {m.name} ({m.direction}). */",
        "typedef struct {",
        "    uint32_t seq; /* header: sender's frame counter */",
        "    uint32_t timestamp_us; /* header: sender's clock */",
    ]
    for f in m.fields:
        if f.role == "reserved":
            continue
        ctype = P.WIRE_TYPES[f.wire_type][2]
        unit = f" [{f.unit}]" if f.unit else ""
        comment = f" /* {f.doc}{unit} */"
        if f.length is None:
            lines.append(f"    {ctype} {f.name};{comment}")
            continue
        size = f.length if isinstance(f.length, int) else _ARRAY_LIMITS[f.length]
        if f.wire_type == "v32":
            lines.append(
                f"    union {{ float radians[{size}]; int32_t counts[{size}]; }} {f.name};{comment}"
            )
        elif f.wire_type == "str":
            lines.append(
                f"    char {f.name}[{size}][MJB_MAX_NAME_BYTES + 1]; /* {f.doc}, NUL-terminated */"
            )
        else:
            lines.append(f"    {ctype} {f.name}[{size}];{comment}")
    lines.append(f"}} mjb_{snake(m.name)};")
    return lines


# -- Markdown ---------------------------------------------------------------------------
def _md_field_rows(fields: tuple[P.Field, ...]) -> list[str]:
    rows = ["| offset | field | type | unit | meaning |", "| --- | --- | --- | --- | --- |"]
    offset: int | str = 0
    for f in fields:
        since = f"**since 1.{f.since_minor}** (older frames: {f.default}) " if f.since_minor else ""
        if f.length is None:
            rows.append(f"| {offset} | `{f.name}` | {f.wire_type} | {f.unit} | {since}{f.doc} |")
            if isinstance(offset, int):
                offset += _field_size(f)
            continue
        offset = "then"
        count = f"[{f.length}]"
        if f.wire_type == "str":
            kind = f"str{count}"
            doc = f"{f.doc}; each: u8 byte length (≤ {P.MAX_NAME_BYTES}) + UTF-8 bytes"
        elif f.wire_type == "v32":
            kind = f"f32 or i32{count}"
            doc = f"{f.doc}; f32 when `encoding` = 0, i32 when 1"
        else:
            kind = f"{f.wire_type}{count}"
            doc = f.doc
        rows.append(f"| then | `{f.name}` | {kind} | {f.unit} | {doc} |")
    return rows


def render_markdown_block() -> str:
    lines = [
        "### Constants",
        "",
        "| name | value |",
        "| --- | --- |",
        f"| protocol version | {P.VERSION_MAJOR}.{P.VERSION_MINOR} |",
        f'| magic | 0x{P.MAGIC:04X} (bytes `4D 4A`, "MJ") |',
        f"| CRC | {P.CRC_NAME} (zlib's crc32), check value 0x{P.CRC_CHECK_VALUE:08X} |",
        f"| header size | {P.HEADER_SIZE} bytes |",
        f"| max channels | {P.MAX_CHANNELS} |",
        f"| max muscles | {P.MAX_MUSCLES} |",
        f"| max torques | {P.MAX_TORQUES} |",
        f"| max name length | {P.MAX_NAME_BYTES} UTF-8 bytes |",
        f"| max frame (header + payload + CRC) | {P.MAX_FRAME_SIZE} bytes |",
        f"| max encoded frame (COBS + delimiter) | {P.MAX_ENCODED_FRAME_SIZE} bytes |",
        f"| default heartbeat period | {P.DEFAULT_HEARTBEAT_PERIOD_MS} ms |",
        f"| default host timeout | {P.DEFAULT_HOST_TIMEOUT_MS} ms |",
        f"| default max estimate age | {P.DEFAULT_MAX_ESTIMATE_AGE_MS} ms |",
        "",
        "### Header (every frame)",
        "",
    ]
    lines += _md_field_rows(P.HEADER)
    lines += [
        "",
        "### Message types",
        "",
        "| type | id | direction | fixed payload bytes |",
        "| --- | --- | --- | --- |",
    ]
    for m in P.MESSAGES:
        lines.append(f"| {m.name} | 0x{m.type_id:02X} | {m.direction} | {m.fixed_size} |")
    for m in P.MESSAGES:
        lines += [
            "",
            f"### {m.name} (0x{m.type_id:02X}, {m.direction})",
            "",
            m.doc,
            "",
            "Payload (offsets from the payload's first byte):",
            "",
        ]
        lines += _md_field_rows(m.fields)
    lines += [
        "",
        "### Estimate status bits",
        "",
        "| bit | name | meaning | firmware must not apply the estimate |",
        "| --- | --- | --- | --- |",
    ]
    for f in P.ESTIMATE_STATUS_FLAGS:
        since = f"**since 1.{f.since_minor}** " if f.since_minor else ""
        lines.append(f"| {f.bit} | `{f.name}` | {since}{f.doc} | {'yes' if f.unusable else 'no'} |")
    lines.append("| other | — | not defined by this version | yes |")
    lines += ["", "### Worked example", "", _worked_example()]
    lines += [
        "",
        "### Decoder error kinds (in the order the checks run)",
        "",
        "| kind | meaning |",
        "| --- | --- |",
    ]
    for kind, doc in P.ERROR_KINDS:
        lines.append(f"| `{kind}` | {doc} |")
    return "\n".join(lines) + "\n"


def _worked_example() -> str:
    from firmware_bridge.codec import JointSample, cobs_decode, encode

    sample = JointSample(
        seq=42, timestamp_us=1_000_000, values=(0.25, -1.0, 0.125), valid_mask=0b111
    )
    wire = encode(sample)
    frame = cobs_decode(wire[:-1])
    assert frame is not None, "the codec's own frame is valid COBS"
    header = frame[: P.HEADER_SIZE].hex(" ")
    payload = frame[P.HEADER_SIZE : -P.CRC_SIZE].hex(" ")
    crc = frame[-P.CRC_SIZE :].hex(" ")
    return (
        f"`{sample!r}` is the frame\n\n"
        f"    header  {header}\n    payload {payload}\n    CRC     {crc}\n\n"
        f"and goes on the wire, after COBS and with its delimiter, as\n\n"
        f"    {wire.hex(' ')}\n"
    )


# -- files ------------------------------------------------------------------------------
def splice(text: str, begin: str, end: str, block: str, path: Path) -> str:
    """`text` with the lines between the `begin` and `end` marker lines replaced by `block`."""
    try:
        head, rest = text.split(begin + "\n", 1)
        _, tail = rest.split(end, 1)
    except ValueError:
        raise ValueError(
            f"{path}: the generated-block markers are missing; restore the lines "
            f"{begin!r} and {end!r}"
        ) from None
    return head + begin + "\n" + block + end + tail


def expected_artefacts() -> dict[Path, str]:
    """Each artefact's full text as the current table generates it."""
    return {
        PROTOCOL_MD: splice(
            PROTOCOL_MD.read_text(encoding="utf-8"),
            MD_BEGIN,
            MD_END,
            render_markdown_block(),
            PROTOCOL_MD,
        ),
        C_HEADER: splice(
            C_HEADER.read_text(encoding="utf-8"), C_BEGIN, C_END, render_c_block(), C_HEADER
        ),
    }


def stale_artefacts() -> list[Path]:
    return [
        path
        for path, text in expected_artefacts().items()
        if path.read_text(encoding="utf-8") != text
    ]
