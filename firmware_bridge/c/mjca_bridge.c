/* mjca_bridge: encoder, decoder and host watchdog of the mjca-edge protocol (PROTOCOL.md). */
#include "mjca_bridge.h"

#include <string.h>

/* ---- CRC-32/ISO-HDLC, bitwise (no table: 1 kB of flash saved, ~40 bytes per sample) ---- */
static uint32_t crc32_update(uint32_t crc, uint8_t byte)
{
    int bit;
    crc ^= byte;
    for (bit = 0; bit < 8; ++bit) {
        crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc;
}

uint32_t mjb_crc32(const uint8_t *data, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < n; ++i) {
        crc = crc32_update(crc, data[i]);
    }
    return ~crc;
}

/* ---- COBS ---- */
size_t mjb_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t pos = 1, code_index = 0, i;
    uint8_t code = 1;
    for (i = 0; i < n; ++i) {
        if (in[i] == 0) {
            out[code_index] = code;
            code_index = pos++;
            code = 1;
        } else {
            out[pos++] = in[i];
            if (++code == 0xFF) {
                out[code_index] = code;
                code_index = pos++;
                code = 1;
            }
        }
    }
    out[code_index] = code;
    return pos;
}

long mjb_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t i = 0, length = 0;
    while (i < n) {
        uint8_t code = in[i];
        size_t end = i + code, j;
        if (code == 0 || end > n) {
            return -1;
        }
        for (j = i + 1; j < end; ++j) {
            if (in[j] == 0 || length >= cap) {
                return -1;
            }
            out[length++] = in[j];
        }
        i = end;
        if (code < 0xFF && i < n) {
            if (length >= cap) {
                return -1;
            }
            out[length++] = 0;
        }
    }
    return (long)length;
}

/* ---- frame writer: CRC and COBS on the fly, no frame-sized scratch buffer ---- */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos;
    size_t code_index;
    uint8_t code;
    uint8_t overflow;
    uint32_t crc;
} writer;

static void writer_put_raw(writer *w, size_t index, uint8_t byte)
{
    if (index < w->cap) {
        w->out[index] = byte;
    } else {
        w->overflow = 1;
    }
}

static void writer_cobs(writer *w, uint8_t byte)
{
    if (byte == 0) {
        writer_put_raw(w, w->code_index, w->code);
        w->code_index = w->pos++;
        w->code = 1;
    } else {
        writer_put_raw(w, w->pos++, byte);
        if (++w->code == 0xFF) {
            writer_put_raw(w, w->code_index, w->code);
            w->code_index = w->pos++;
            w->code = 1;
        }
    }
}

static void put_u8(writer *w, uint8_t v)
{
    w->crc = crc32_update(w->crc, v);
    writer_cobs(w, v);
}

static void put_u16(writer *w, uint16_t v)
{
    put_u8(w, (uint8_t)(v & 0xFFu));
    put_u8(w, (uint8_t)(v >> 8));
}

static void put_u32(writer *w, uint32_t v)
{
    put_u16(w, (uint16_t)(v & 0xFFFFu));
    put_u16(w, (uint16_t)(v >> 16));
}

static void put_f32(writer *w, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u32(w, bits);
}

static void writer_begin(writer *w, uint8_t *out, size_t cap, uint8_t msg_type,
                         size_t payload_length, uint32_t seq, uint32_t timestamp_us)
{
    w->out = out;
    w->cap = cap;
    w->pos = 1;
    w->code_index = 0;
    w->code = 1;
    w->overflow = 0;
    w->crc = 0xFFFFFFFFu;
    put_u16(w, (uint16_t)MJB_MAGIC);
    put_u8(w, (uint8_t)MJB_VERSION_MAJOR);
    put_u8(w, (uint8_t)MJB_VERSION_MINOR);
    put_u8(w, msg_type);
    put_u8(w, 0); /* header_flags */
    put_u16(w, (uint16_t)payload_length);
    put_u32(w, seq);
    put_u32(w, timestamp_us);
}

static size_t writer_end(writer *w)
{
    uint32_t crc = ~w->crc;
    int i;
    for (i = 0; i < 4; ++i) {
        writer_cobs(w, (uint8_t)(crc >> (8 * i)));
    }
    writer_put_raw(w, w->code_index, w->code);
    writer_put_raw(w, w->pos++, 0); /* delimiter */
    return w->overflow ? 0 : w->pos;
}

static size_t name_length(const char *name)
{
    size_t n = 0;
    while (n <= MJB_MAX_NAME_BYTES && name[n] != '\0') {
        ++n;
    }
    return n;
}

static int names_fit(const char names[][MJB_MAX_NAME_BYTES + 1], size_t count, size_t *bytes)
{
    size_t i;
    for (i = 0; i < count; ++i) {
        size_t n = name_length(names[i]);
        if (n > MJB_MAX_NAME_BYTES) {
            return 0;
        }
        *bytes += 1 + n;
    }
    return 1;
}

static void put_names(writer *w, const char names[][MJB_MAX_NAME_BYTES + 1], size_t count)
{
    size_t i, j;
    for (i = 0; i < count; ++i) {
        size_t n = name_length(names[i]);
        put_u8(w, (uint8_t)n);
        for (j = 0; j < n; ++j) {
            put_u8(w, (uint8_t)names[i][j]);
        }
    }
}

size_t mjb_encode_hello(const mjb_hello *m, uint8_t *out, size_t cap)
{
    writer w;
    size_t payload = MJB_HELLO_FIXED_SIZE;
    if (m->n_joints > MJB_MAX_CHANNELS || m->n_muscles > MJB_MAX_MUSCLES ||
        !names_fit(m->joint_names, m->n_joints, &payload) ||
        !names_fit(m->muscle_names, m->n_muscles, &payload)) {
        return 0;
    }
    writer_begin(&w, out, cap, (uint8_t)MJB_MSG_HELLO, payload, m->seq, m->timestamp_us);
    put_u8(&w, m->role);
    put_u8(&w, m->n_joints);
    put_u8(&w, m->n_muscles);
    put_u8(&w, m->encoding);
    put_f32(&w, m->sample_rate_hz);
    put_u16(&w, m->heartbeat_period_ms);
    put_u8(&w, m->reply_requested);
    put_u8(&w, 0); /* reserved */
    put_names(&w, m->joint_names, m->n_joints);
    put_names(&w, m->muscle_names, m->n_muscles);
    return writer_end(&w);
}

size_t mjb_encode_heartbeat(const mjb_heartbeat *m, uint8_t *out, size_t cap)
{
    writer w;
    writer_begin(&w, out, cap, (uint8_t)MJB_MSG_HEARTBEAT, MJB_HEARTBEAT_FIXED_SIZE, m->seq,
                 m->timestamp_us);
    put_u8(&w, m->role);
    put_u8(&w, 0); /* reserved */
    put_u16(&w, m->heartbeat_period_ms);
    put_u16(&w, m->status);
    return writer_end(&w);
}

size_t mjb_encode_joint_sample(const mjb_joint_sample *m, uint8_t *out, size_t cap)
{
    writer w;
    size_t i;
    if (m->n_channels > MJB_MAX_CHANNELS ||
        (m->encoding != MJB_ENCODING_RADIANS && m->encoding != MJB_ENCODING_COUNTS)) {
        return 0;
    }
    writer_begin(&w, out, cap, (uint8_t)MJB_MSG_JOINT_SAMPLE,
                 MJB_JOINT_SAMPLE_FIXED_SIZE + 4u * m->n_channels, m->seq, m->timestamp_us);
    put_u8(&w, m->encoding);
    put_u8(&w, m->n_channels);
    put_u16(&w, m->valid_mask);
    for (i = 0; i < m->n_channels; ++i) {
        if (m->encoding == MJB_ENCODING_RADIANS) {
            put_f32(&w, m->values.radians[i]);
        } else {
            put_u32(&w, (uint32_t)m->values.counts[i]);
        }
    }
    return writer_end(&w);
}

size_t mjb_encode_estimate(const mjb_estimate *m, uint8_t *out, size_t cap)
{
    writer w;
    size_t i;
    if (m->n_muscles > MJB_MAX_MUSCLES || m->n_torques > MJB_MAX_TORQUES) {
        return 0;
    }
    writer_begin(&w, out, cap, (uint8_t)MJB_MSG_ESTIMATE,
                 MJB_ESTIMATE_FIXED_SIZE + 8u * m->n_muscles + 4u * m->n_torques +
                     MJB_ESTIMATE_TAIL_SIZE,
                 m->seq, m->timestamp_us);
    put_u32(&w, m->sample_seq);
    put_u32(&w, m->sample_timestamp_us);
    put_u16(&w, m->status);
    put_u16(&w, m->skipped);
    put_u32(&w, m->latency_us);
    put_u8(&w, m->n_muscles);
    put_u8(&w, m->n_torques);
    for (i = 0; i < m->n_muscles; ++i) {
        put_f32(&w, m->activations[i]);
    }
    for (i = 0; i < m->n_muscles; ++i) {
        put_f32(&w, m->forces[i]);
    }
    for (i = 0; i < m->n_torques; ++i) {
        put_f32(&w, m->torques[i]);
    }
    put_u32(&w, m->activation_age_us);
    return writer_end(&w);
}

size_t mjb_encode_message(const mjb_message *m, uint8_t *out, size_t cap)
{
    switch (m->msg_type) {
    case MJB_MSG_HELLO:
        return mjb_encode_hello(&m->u.hello, out, cap);
    case MJB_MSG_HEARTBEAT:
        return mjb_encode_heartbeat(&m->u.heartbeat, out, cap);
    case MJB_MSG_JOINT_SAMPLE:
        return mjb_encode_joint_sample(&m->u.joint_sample, out, cap);
    case MJB_MSG_ESTIMATE:
        return mjb_encode_estimate(&m->u.estimate, out, cap);
    default:
        return 0;
    }
}

/* ---- frame reader ---- */
typedef struct {
    const uint8_t *p;
    size_t end;
    size_t pos;
    int bad;
} reader;

static uint8_t get_u8(reader *r)
{
    if (r->pos + 1 > r->end) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->pos++];
}

static uint16_t get_u16(reader *r)
{
    uint16_t lo = get_u8(r);
    return (uint16_t)(lo | (uint16_t)(get_u8(r) << 8));
}

static uint32_t get_u32(reader *r)
{
    uint32_t lo = get_u16(r);
    return lo | ((uint32_t)get_u16(r) << 16);
}

static float get_f32(reader *r)
{
    uint32_t bits = get_u32(r);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void get_names(reader *r, char names[][MJB_MAX_NAME_BYTES + 1], size_t count)
{
    size_t i, j;
    for (i = 0; i < count && !r->bad; ++i) {
        uint8_t n = get_u8(r);
        if (n > MJB_MAX_NAME_BYTES) {
            r->bad = 1;
            return;
        }
        for (j = 0; j < n; ++j) {
            names[i][j] = (char)get_u8(r);
            if (names[i][j] == '\0') {
                r->bad = 1;
            }
        }
        names[i][n] = '\0';
    }
}

static int decode_payload(reader *r, mjb_message *out)
{
    size_t i;
    switch (out->msg_type) {
    case MJB_MSG_HELLO: {
        mjb_hello *m = &out->u.hello;
        m->role = get_u8(r);
        m->n_joints = get_u8(r);
        m->n_muscles = get_u8(r);
        m->encoding = get_u8(r);
        m->sample_rate_hz = get_f32(r);
        m->heartbeat_period_ms = get_u16(r);
        m->reply_requested = get_u8(r);
        (void)get_u8(r); /* reserved */
        if (m->n_joints > MJB_MAX_CHANNELS || m->n_muscles > MJB_MAX_MUSCLES || m->encoding > 1) {
            return 0;
        }
        get_names(r, m->joint_names, m->n_joints);
        get_names(r, m->muscle_names, m->n_muscles);
        return 1;
    }
    case MJB_MSG_HEARTBEAT: {
        mjb_heartbeat *m = &out->u.heartbeat;
        m->role = get_u8(r);
        (void)get_u8(r); /* reserved */
        m->heartbeat_period_ms = get_u16(r);
        m->status = get_u16(r);
        return 1;
    }
    case MJB_MSG_JOINT_SAMPLE: {
        mjb_joint_sample *m = &out->u.joint_sample;
        m->encoding = get_u8(r);
        m->n_channels = get_u8(r);
        m->valid_mask = get_u16(r);
        if (m->n_channels > MJB_MAX_CHANNELS || m->encoding > 1) {
            return 0;
        }
        for (i = 0; i < m->n_channels; ++i) {
            if (m->encoding == MJB_ENCODING_RADIANS) {
                m->values.radians[i] = get_f32(r);
            } else {
                m->values.counts[i] = (int32_t)get_u32(r);
            }
        }
        return 1;
    }
    case MJB_MSG_ESTIMATE: {
        /* Fields added by minor 1 take their 1.0 meaning in a 1.0 sender's frame. */
        mjb_estimate *m = &out->u.estimate;
        uint8_t n_torques_byte;
        m->sample_seq = get_u32(r);
        m->sample_timestamp_us = get_u32(r);
        m->status = get_u16(r);
        m->skipped = get_u16(r);
        m->latency_us = get_u32(r);
        m->n_muscles = get_u8(r);
        n_torques_byte = get_u8(r); /* reserved in 1.0 */
        m->n_torques = out->version_minor >= 1 ? n_torques_byte
                                               : (uint8_t)MJB_ESTIMATE_N_TORQUES_BEFORE_1_1;
        if (m->n_muscles > MJB_MAX_MUSCLES || m->n_torques > MJB_MAX_TORQUES) {
            return 0;
        }
        for (i = 0; i < m->n_muscles; ++i) {
            m->activations[i] = get_f32(r);
        }
        for (i = 0; i < m->n_muscles; ++i) {
            m->forces[i] = get_f32(r);
        }
        for (i = 0; i < m->n_torques; ++i) {
            m->torques[i] = get_f32(r);
        }
        m->activation_age_us = out->version_minor >= 1
                                   ? get_u32(r)
                                   : (uint32_t)MJB_ESTIMATE_ACTIVATION_AGE_US_BEFORE_1_1;
        return 1;
    }
    default:
        return 0;
    }
}

mjb_error mjb_decode_frame(const uint8_t *frame, size_t n, mjb_message *out)
{
    reader r;
    size_t payload_end;
    uint32_t crc;
    uint16_t payload_length;
    uint8_t major;
    if (n < MJB_HEADER_SIZE + MJB_CRC_SIZE) {
        return MJB_ERR_SHORT;
    }
    payload_end = n - MJB_CRC_SIZE;
    crc = (uint32_t)frame[payload_end] | ((uint32_t)frame[payload_end + 1] << 8) |
          ((uint32_t)frame[payload_end + 2] << 16) | ((uint32_t)frame[payload_end + 3] << 24);
    if (mjb_crc32(frame, payload_end) != crc) {
        return MJB_ERR_CRC;
    }
    r.p = frame;
    r.end = payload_end;
    r.pos = 0;
    r.bad = 0;
    if (get_u16(&r) != MJB_MAGIC) {
        return MJB_ERR_MAGIC;
    }
    major = get_u8(&r);
    out->version_minor = get_u8(&r);
    if (major != MJB_VERSION_MAJOR) {
        return MJB_ERR_VERSION;
    }
    out->msg_type = get_u8(&r);
    (void)get_u8(&r); /* header_flags */
    payload_length = get_u16(&r);
    if ((size_t)payload_length != payload_end - MJB_HEADER_SIZE) {
        return MJB_ERR_LENGTH;
    }
    if (out->msg_type != MJB_MSG_HELLO && out->msg_type != MJB_MSG_HEARTBEAT &&
        out->msg_type != MJB_MSG_JOINT_SAMPLE && out->msg_type != MJB_MSG_ESTIMATE) {
        return MJB_ERR_UNKNOWN_TYPE;
    }
    {
        /* seq and timestamp_us lead every message struct */
        uint32_t seq = get_u32(&r);
        uint32_t timestamp_us = get_u32(&r);
        if (!decode_payload(&r, out) || r.bad) {
            return MJB_ERR_PAYLOAD;
        }
        /* A newer minor version may append fields; this receiver ignores them. */
        if (r.pos != payload_end && out->version_minor <= MJB_VERSION_MINOR) {
            return MJB_ERR_PAYLOAD;
        }
        switch (out->msg_type) {
        case MJB_MSG_HELLO:
            out->u.hello.seq = seq;
            out->u.hello.timestamp_us = timestamp_us;
            break;
        case MJB_MSG_HEARTBEAT:
            out->u.heartbeat.seq = seq;
            out->u.heartbeat.timestamp_us = timestamp_us;
            break;
        case MJB_MSG_JOINT_SAMPLE:
            out->u.joint_sample.seq = seq;
            out->u.joint_sample.timestamp_us = timestamp_us;
            break;
        default:
            out->u.estimate.seq = seq;
            out->u.estimate.timestamp_us = timestamp_us;
            break;
        }
    }
    return MJB_ERR_NONE;
}

/* ---- stream decoder ---- */
void mjb_decoder_init(mjb_decoder *d)
{
    memset(d, 0, sizeof *d);
}

static mjb_error decode_candidate(mjb_decoder *d, const uint8_t *cobs, size_t n,
                                  mjb_message *out)
{
    long length = mjb_cobs_decode(cobs, n, d->frame, sizeof d->frame);
    if (length < 0) {
        return MJB_ERR_COBS;
    }
    return mjb_decode_frame(d->frame, (size_t)length, out);
}

int mjb_decoder_feed(mjb_decoder *d, uint8_t byte, mjb_message *out)
{
    mjb_error error;
    size_t start;
    if (byte != 0) {
        if (d->length < sizeof d->buffer) {
            d->buffer[d->length++] = byte;
        } else if (!d->overflowed) {
            d->overflowed = 1;
            d->errors[MJB_ERR_OVERSIZE]++;
        }
        return 0;
    }
    if (d->overflowed || d->length == 0) {
        d->overflowed = 0;
        d->length = 0;
        return 0;
    }
    error = decode_candidate(d, d->buffer, d->length, out);
    if (error == MJB_ERR_NONE) {
        d->length = 0;
        d->frames++;
        return 1;
    }
    d->errors[error]++;
    /* A frame starts with a COBS code byte followed by the magic 'M' 'J'. */
    for (start = 2; start + 1 < d->length; ++start) {
        if (d->buffer[start] == 'M' && d->buffer[start + 1] == 'J' &&
            decode_candidate(d, d->buffer + start - 1, d->length - start + 1, out) ==
                MJB_ERR_NONE) {
            d->length = 0;
            d->frames++;
            return 1;
        }
    }
    d->length = 0;
    return 0;
}

/* ---- host watchdog ---- */
void mjb_host_watch_init(mjb_host_watch *w, uint32_t host_timeout_us,
                         uint32_t max_estimate_age_us)
{
    memset(w, 0, sizeof *w);
    w->host_timeout_us = host_timeout_us;
    w->max_estimate_age_us = max_estimate_age_us;
}

void mjb_host_watch_on_message(mjb_host_watch *w, const mjb_message *m, uint32_t now_us)
{
    int from_host = m->msg_type == MJB_MSG_ESTIMATE ||
                    (m->msg_type == MJB_MSG_HEARTBEAT && m->u.heartbeat.role == MJB_ROLE_HOST) ||
                    (m->msg_type == MJB_MSG_HELLO && m->u.hello.role == MJB_ROLE_HOST);
    if (!from_host) {
        return;
    }
    w->host_seen = 1;
    w->last_host_frame_us = now_us;
    if (m->msg_type == MJB_MSG_ESTIMATE) {
        w->estimate = m->u.estimate;
        w->have_estimate = 1;
    }
}

mjb_host_state mjb_host_watch_check(const mjb_host_watch *w, uint32_t now_us)
{
    /* Unsigned differences stay right across the 2^32 us wrap of micros(). */
    if (!w->host_seen) {
        return MJB_HOST_NEVER_SEEN;
    }
    if ((uint32_t)(now_us - w->last_host_frame_us) > w->host_timeout_us) {
        return MJB_HOST_GONE;
    }
    if (!w->have_estimate) {
        return MJB_HOST_NO_ESTIMATE;
    }
    if ((uint32_t)(now_us - w->estimate.sample_timestamp_us) > w->max_estimate_age_us) {
        return MJB_HOST_ESTIMATE_STALE;
    }
    /* Bits a newer minor version defines are unknown here: must not apply. */
    if (w->estimate.status & (MJB_STATUS_UNUSABLE_MASK | (uint16_t)~MJB_STATUS_KNOWN_MASK)) {
        return MJB_HOST_ESTIMATE_UNUSABLE;
    }
    return MJB_HOST_OK;
}
