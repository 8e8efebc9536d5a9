/*
 * mjca_bridge: the mjca-edge serial protocol for firmware (see PROTOCOL.md).
 *
 * C99, no malloc, no dependency beyond the C standard library. Include this
 * header, compile mjca_bridge.c with the firmware. Typical device loop:
 *
 *   mjb_decoder dec; mjb_host_watch watch; mjb_message msg;
 *   mjb_decoder_init(&dec);
 *   mjb_host_watch_init(&watch, MJB_DEFAULT_HOST_TIMEOUT_MS * 1000u,
 *                       MJB_DEFAULT_MAX_ESTIMATE_AGE_MS * 1000u);
 *   every sample:   n = mjb_encode_joint_sample(&sample, buf, sizeof buf); uart_write(buf, n);
 *   every rx byte:  if (mjb_decoder_feed(&dec, byte, &msg))
 *                       mjb_host_watch_on_message(&watch, &msg, micros());
 *   before acting:  if (mjb_host_watch_check(&watch, micros()) == MJB_HOST_OK)
 *                       apply(&watch.estimate); else fall back to the safe state;
 *
 * All multi-byte fields travel little-endian; the codec converts, so it works
 * on big-endian targets too. Floats must be IEEE-754 binary32.
 */
#ifndef MJCA_BRIDGE_H
#define MJCA_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* BEGIN GENERATED: generated from firmware_bridge/protocol.py by scripts/generate_protocol_artefacts.py; do not edit by hand */
#define MJB_VERSION_MAJOR 1u
#define MJB_VERSION_MINOR 1u
#define MJB_MAGIC 0x4A4Du /* bytes 'M' 'J' */
#define MJB_CRC_SIZE 4u /* CRC-32/ISO-HDLC, little-endian after the payload */
#define MJB_CRC_CHECK_VALUE 0xCBF43926u /* CRC of "123456789" */
#define MJB_HEADER_SIZE 16u
#define MJB_MAX_CHANNELS 16u
#define MJB_MAX_MUSCLES 64u
#define MJB_MAX_NAME_BYTES 31u
#define MJB_MAX_TORQUES 16u
#define MJB_MAX_FRAME_SIZE 2592u /* header + payload + CRC */
#define MJB_MAX_ENCODED_FRAME_SIZE 2604u /* after COBS, with the delimiter */
#define MJB_ROLE_DEVICE 0u
#define MJB_ROLE_HOST 1u
#define MJB_ENCODING_RADIANS 0u
#define MJB_ENCODING_COUNTS 1u
#define MJB_DEFAULT_HEARTBEAT_PERIOD_MS 100u
#define MJB_DEFAULT_HOST_TIMEOUT_MS 300u
#define MJB_DEFAULT_MAX_ESTIMATE_AGE_MS 50u

/* Header field offsets (bytes from the frame's start, after COBS decoding). */
#define MJB_HEADER_OFFSET_MAGIC 0u
#define MJB_HEADER_OFFSET_VERSION_MAJOR 2u
#define MJB_HEADER_OFFSET_VERSION_MINOR 3u
#define MJB_HEADER_OFFSET_MSG_TYPE 4u
#define MJB_HEADER_OFFSET_HEADER_FLAGS 5u
#define MJB_HEADER_OFFSET_PAYLOAD_LENGTH 6u
#define MJB_HEADER_OFFSET_SEQ 8u
#define MJB_HEADER_OFFSET_TIMESTAMP_US 12u

/* Message types. */
#define MJB_MSG_HELLO 0x01u
#define MJB_MSG_HEARTBEAT 0x02u
#define MJB_MSG_JOINT_SAMPLE 0x10u
#define MJB_MSG_ESTIMATE 0x20u

/* Hello payload offsets; arrays follow the fixed part in order. */
#define MJB_HELLO_OFFSET_ROLE 0u
#define MJB_HELLO_OFFSET_N_JOINTS 1u
#define MJB_HELLO_OFFSET_N_MUSCLES 2u
#define MJB_HELLO_OFFSET_ENCODING 3u
#define MJB_HELLO_OFFSET_SAMPLE_RATE_HZ 4u
#define MJB_HELLO_OFFSET_HEARTBEAT_PERIOD_MS 8u
#define MJB_HELLO_OFFSET_REPLY_REQUESTED 10u
#define MJB_HELLO_OFFSET_RESERVED 11u
#define MJB_HELLO_FIXED_SIZE 12u

/* Heartbeat payload offsets; arrays follow the fixed part in order. */
#define MJB_HEARTBEAT_OFFSET_ROLE 0u
#define MJB_HEARTBEAT_OFFSET_RESERVED 1u
#define MJB_HEARTBEAT_OFFSET_HEARTBEAT_PERIOD_MS 2u
#define MJB_HEARTBEAT_OFFSET_STATUS 4u
#define MJB_HEARTBEAT_FIXED_SIZE 6u

/* JointSample payload offsets; arrays follow the fixed part in order. */
#define MJB_JOINT_SAMPLE_OFFSET_ENCODING 0u
#define MJB_JOINT_SAMPLE_OFFSET_N_CHANNELS 1u
#define MJB_JOINT_SAMPLE_OFFSET_VALID_MASK 2u
#define MJB_JOINT_SAMPLE_FIXED_SIZE 4u

/* Estimate payload offsets; arrays follow the fixed part in order. */
#define MJB_ESTIMATE_OFFSET_SAMPLE_SEQ 0u
#define MJB_ESTIMATE_OFFSET_SAMPLE_TIMESTAMP_US 4u
#define MJB_ESTIMATE_OFFSET_STATUS 8u
#define MJB_ESTIMATE_OFFSET_SKIPPED 10u
#define MJB_ESTIMATE_OFFSET_LATENCY_US 12u
#define MJB_ESTIMATE_OFFSET_N_MUSCLES 16u
#define MJB_ESTIMATE_OFFSET_N_TORQUES 17u
#define MJB_ESTIMATE_FIXED_SIZE 18u
#define MJB_ESTIMATE_TAIL_SIZE 4u /* fields after the arrays */
#define MJB_ESTIMATE_N_TORQUES_BEFORE_1_1 3u /* its value in frames of minor < 1 */
#define MJB_ESTIMATE_ACTIVATION_AGE_US_BEFORE_1_1 0u /* its value in frames of minor < 1 */

/* Estimate status bits. */
#define MJB_STATUS_MODEL_NOT_READY (1u << 0)
#define MJB_STATUS_STALE (1u << 1)
#define MJB_STATUS_INPUT_OUT_OF_RANGE (1u << 2)
#define MJB_STATUS_INPUT_GAP (1u << 3)
#define MJB_STATUS_INPUT_INVALID (1u << 4)
#define MJB_STATUS_BACKEND_DEGRADED (1u << 5)
#define MJB_STATUS_ACTIVATION_STALE (1u << 6)
#define MJB_STATUS_UNUSABLE_MASK 0x0053u /* an Estimate with any of these must not be applied */
#define MJB_STATUS_KNOWN_MASK 0x007Fu /* bits this version defines; any other bit: must not apply */

/* Why a decoder dropped a candidate frame (index into mjb_decoder.errors). */
typedef enum {
    MJB_ERR_NONE = 0,
    MJB_ERR_COBS, /* not a valid COBS encoding */
    MJB_ERR_SHORT, /* shorter than a header and a CRC */
    MJB_ERR_CRC, /* CRC-32 mismatch */
    MJB_ERR_MAGIC, /* CRC good but the first two bytes are not 'MJ' */
    MJB_ERR_VERSION, /* another protocol major version */
    MJB_ERR_LENGTH, /* payload_length disagrees with the frame's size */
    MJB_ERR_UNKNOWN_TYPE, /* a message type this receiver does not know (skipped) */
    MJB_ERR_PAYLOAD, /* payload malformed: counts beyond limits, bad UTF-8, wrong size */
    MJB_ERR_OVERSIZE, /* more than the largest frame's bytes without a delimiter */
    MJB_ERR_COUNT
} mjb_error;

/* Hello (both). */
typedef struct {
    uint32_t seq; /* header: sender's frame counter */
    uint32_t timestamp_us; /* header: sender's clock */
    uint8_t role; /* 0 device, 1 host */
    uint8_t n_joints; /* number of joint names */
    uint8_t n_muscles; /* number of muscle names */
    uint8_t encoding; /* device: JointSample encoding it sends (0 rad, 1 counts); host: 0 */
    float sample_rate_hz; /* device: nominal sample rate; host: the model's rate (any device rate is resampled to it) [Hz] */
    uint16_t heartbeat_period_ms; /* the sender's heartbeat period [ms] */
    uint8_t reply_requested; /* 1: the receiver answers with its own Hello (with 0) */
    char joint_names[MJB_MAX_CHANNELS][MJB_MAX_NAME_BYTES + 1]; /* device: its channel names in channel order; host: the coordinates of the Estimate's torques, in torque order, NUL-terminated */
    char muscle_names[MJB_MAX_MUSCLES][MJB_MAX_NAME_BYTES + 1]; /* muscle names in Estimate order (device sends none), NUL-terminated */
} mjb_hello;

/* Heartbeat (both). */
typedef struct {
    uint32_t seq; /* header: sender's frame counter */
    uint32_t timestamp_us; /* header: sender's clock */
    uint8_t role; /* 0 device, 1 host */
    uint16_t heartbeat_period_ms; /* the sender's heartbeat period [ms] */
    uint16_t status; /* host: Estimate status bits that hold now (MODEL_NOT_READY while it is not estimating: no samples yet, or the device is silent); device: 0 */
} mjb_heartbeat;

/* JointSample (device->host). */
typedef struct {
    uint32_t seq; /* header: sender's frame counter */
    uint32_t timestamp_us; /* header: sender's clock */
    uint8_t encoding; /* 0: values are float32 rad (OpenSim); 1: int32 counts */
    uint8_t n_channels; /* number of channels */
    uint16_t valid_mask; /* bit i set: channel i is valid */
    union { float radians[MJB_MAX_CHANNELS]; int32_t counts[MJB_MAX_CHANNELS]; } values; /* one value per channel [rad or counts] */
} mjb_joint_sample;

/* Estimate (host->device). */
typedef struct {
    uint32_t seq; /* header: sender's frame counter */
    uint32_t timestamp_us; /* header: sender's clock */
    uint32_t sample_seq; /* seq of the JointSample answered */
    uint32_t sample_timestamp_us; /* timestamp_us of the JointSample answered [us] */
    uint16_t status; /* status bits: the Estimate status table */
    uint16_t skipped; /* samples received but not answered since the last Estimate */
    uint32_t latency_us; /* host time from the sample's arrival to this send [us] */
    uint8_t n_muscles; /* number of muscles */
    uint8_t n_torques; /* number of torques (in a 1.0 frame this byte is reserved and there are 3 torques: hip, knee, ankle) */
    float activations[MJB_MAX_MUSCLES]; /* activation per muscle, 0..1 */
    float forces[MJB_MAX_MUSCLES]; /* muscle force per muscle [N] */
    float torques[MJB_MAX_TORQUES]; /* muscle torque tau = R^TF per coordinate of the host's Hello joint_names, in that order [N*m] */
    uint32_t activation_age_us; /* device time from the end of the input window whose network output gave the activations to the instant estimated (0: the network ran on this sample's own window) [us] */
} mjb_estimate;
/* END GENERATED */

/* Any decoded message; msg_type says which member is valid. */
typedef struct {
    uint8_t msg_type;      /* MJB_MSG_* */
    uint8_t version_minor; /* the sender's minor version */
    union {
        mjb_hello hello;
        mjb_heartbeat heartbeat;
        mjb_joint_sample joint_sample;
        mjb_estimate estimate;
    } u;
} mjb_message;

/* CRC-32/ISO-HDLC of n bytes (the same as zlib's crc32). */
uint32_t mjb_crc32(const uint8_t *data, size_t n);

/* COBS-encode n bytes into out (room for n + n / 254 + 1 bytes); returns the bytes written.
 * No delimiter is appended. */
size_t mjb_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);

/* COBS-decode n bytes (no delimiter) into out of capacity cap; returns the decoded length,
 * or -1 when the input is not valid COBS or does not fit. */
long mjb_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Encoders: write one complete wire frame (COBS bytes and the 0x00 delimiter) into out.
 * Return the frame's length, or 0 when cap is too small or a count exceeds the protocol's
 * limits. MJB_MAX_ENCODED_FRAME_SIZE bytes always suffice. */
size_t mjb_encode_hello(const mjb_hello *m, uint8_t *out, size_t cap);
size_t mjb_encode_heartbeat(const mjb_heartbeat *m, uint8_t *out, size_t cap);
size_t mjb_encode_joint_sample(const mjb_joint_sample *m, uint8_t *out, size_t cap);
size_t mjb_encode_estimate(const mjb_estimate *m, uint8_t *out, size_t cap);
size_t mjb_encode_message(const mjb_message *m, uint8_t *out, size_t cap);

/* Decode one frame after COBS decoding (header + payload + CRC) into out. */
mjb_error mjb_decode_frame(const uint8_t *frame, size_t n, mjb_message *out);

/* Incremental decoder: feed received bytes one at a time. */
typedef struct {
    uint8_t buffer[MJB_MAX_ENCODED_FRAME_SIZE]; /* COBS bytes since the last delimiter */
    size_t length;
    uint8_t overflowed; /* drop bytes until the next delimiter */
    uint8_t frame[MJB_MAX_FRAME_SIZE]; /* scratch: the decoded frame */
    uint32_t errors[MJB_ERR_COUNT];     /* dropped candidates by mjb_error kind */
    uint32_t frames;                    /* messages decoded */
} mjb_decoder;

void mjb_decoder_init(mjb_decoder *d);

/* Returns 1 and fills out when byte completes a valid message, else 0. A candidate that
 * fails is counted in d->errors and scanned for a later frame start (garbage before a
 * frame without a delimiter in between does not cost the frame). */
int mjb_decoder_feed(mjb_decoder *d, uint8_t byte, mjb_message *out);

/* Fail-safe: is the host alive and is its newest estimate fresh and usable? */
typedef enum {
    MJB_HOST_OK = 0,          /* apply watch.estimate */
    MJB_HOST_NEVER_SEEN,      /* no valid frame from the host yet */
    MJB_HOST_GONE,            /* no valid host frame within host_timeout_us */
    MJB_HOST_NO_ESTIMATE,     /* host alive, no Estimate yet */
    MJB_HOST_ESTIMATE_STALE,  /* newest Estimate answers a sample older than max_estimate_age_us */
    MJB_HOST_ESTIMATE_UNUSABLE /* newest Estimate carries a bit of MJB_STATUS_UNUSABLE_MASK
                                  or a bit outside MJB_STATUS_KNOWN_MASK */
} mjb_host_state;

typedef struct {
    uint32_t host_timeout_us;     /* device clock: silence after which the host is gone */
    uint32_t max_estimate_age_us; /* device clock: now minus the answered sample's timestamp */
    uint8_t host_seen;
    uint8_t have_estimate;
    uint32_t last_host_frame_us;  /* device clock when the last valid host frame arrived */
    mjb_estimate estimate;        /* newest Estimate received */
} mjb_host_watch;

void mjb_host_watch_init(mjb_host_watch *w, uint32_t host_timeout_us,
                         uint32_t max_estimate_age_us);
/* Call with every message the decoder returns and the device clock (micros()). */
void mjb_host_watch_on_message(mjb_host_watch *w, const mjb_message *m, uint32_t now_us);
/* Call before using w->estimate; anything but MJB_HOST_OK means: fall back to safe. */
mjb_host_state mjb_host_watch_check(const mjb_host_watch *w, uint32_t now_us);

#ifdef __cplusplus
}
#endif

#endif /* MJCA_BRIDGE_H */
