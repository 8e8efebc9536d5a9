/*
 * Test driver of the C codec, run by tests/firmware_bridge/test_bridge_c_codec.py.
 *
 *   bridge_vectors decode    stdin: lines of hex, the byte stream in arbitrary chunks.
 *                            stdout: per decoded message "MSG <description>" and
 *                            "ENC <hex of the C re-encoding>", then "ERRORS <counts by kind>"
 *                            and "FRAMES <n>".
 *   bridge_vectors firmware  stdout: one hex frame per line, messages a firmware builds.
 *   bridge_vectors watch     checks the host watchdog; prints "watch ok" or the failure.
 *
 * Floats are printed as the hex of their IEEE-754 bits so Python can compare exactly.
 */
#include <stdio.h>
#include <string.h>

#include "mjca_bridge.h"

static unsigned long f32_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (unsigned long)bits;
}

static void print_floats(const char *name, const float *v, size_t n)
{
    size_t i;
    printf(" %s=[", name);
    for (i = 0; i < n; ++i) {
        printf("%s0x%08lx", i ? "," : "", f32_bits(v[i]));
    }
    printf("]");
}

static void print_names(const char *name, const char names[][MJB_MAX_NAME_BYTES + 1], size_t n)
{
    size_t i, j;
    printf(" %s=[", name);
    for (i = 0; i < n; ++i) {
        if (i) {
            printf(",");
        }
        for (j = 0; names[i][j] != '\0'; ++j) {
            printf("%02x", (unsigned)(uint8_t)names[i][j]);
        }
    }
    printf("]");
}

static void describe(const mjb_message *m)
{
    size_t i;
    switch (m->msg_type) {
    case MJB_MSG_HELLO: {
        const mjb_hello *h = &m->u.hello;
        printf("Hello seq=%lu timestamp_us=%lu role=%u n_joints=%u n_muscles=%u encoding=%u "
               "sample_rate_hz=0x%08lx heartbeat_period_ms=%u reply_requested=%u",
               (unsigned long)h->seq, (unsigned long)h->timestamp_us, h->role, h->n_joints,
               h->n_muscles, h->encoding, f32_bits(h->sample_rate_hz), h->heartbeat_period_ms,
               h->reply_requested);
        print_names("joint_names", h->joint_names, h->n_joints);
        print_names("muscle_names", h->muscle_names, h->n_muscles);
        break;
    }
    case MJB_MSG_HEARTBEAT: {
        const mjb_heartbeat *h = &m->u.heartbeat;
        printf("Heartbeat seq=%lu timestamp_us=%lu role=%u heartbeat_period_ms=%u status=%u",
               (unsigned long)h->seq, (unsigned long)h->timestamp_us, h->role,
               h->heartbeat_period_ms, h->status);
        break;
    }
    case MJB_MSG_JOINT_SAMPLE: {
        const mjb_joint_sample *s = &m->u.joint_sample;
        printf("JointSample seq=%lu timestamp_us=%lu encoding=%u n_channels=%u valid_mask=%u "
               "values=[",
               (unsigned long)s->seq, (unsigned long)s->timestamp_us, s->encoding,
               s->n_channels, s->valid_mask);
        for (i = 0; i < s->n_channels; ++i) {
            unsigned long bits = s->encoding == MJB_ENCODING_RADIANS
                                     ? f32_bits(s->values.radians[i])
                                     : (unsigned long)(uint32_t)s->values.counts[i];
            printf("%s0x%08lx", i ? "," : "", bits);
        }
        printf("]");
        break;
    }
    case MJB_MSG_ESTIMATE: {
        const mjb_estimate *e = &m->u.estimate;
        printf("Estimate seq=%lu timestamp_us=%lu sample_seq=%lu sample_timestamp_us=%lu "
               "status=%u skipped=%u latency_us=%lu n_muscles=%u n_torques=%u",
               (unsigned long)e->seq, (unsigned long)e->timestamp_us,
               (unsigned long)e->sample_seq, (unsigned long)e->sample_timestamp_us, e->status,
               e->skipped, (unsigned long)e->latency_us, e->n_muscles, e->n_torques);
        print_floats("activations", e->activations, e->n_muscles);
        print_floats("forces", e->forces, e->n_muscles);
        print_floats("torques", e->torques, e->n_torques);
        printf(" activation_age_us=%lu", (unsigned long)e->activation_age_us);
        break;
    }
    default:
        printf("?");
    }
    printf("\n");
}

static void print_hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static mjb_decoder decoder;
static mjb_message message;
static uint8_t wire[MJB_MAX_ENCODED_FRAME_SIZE];

static int run_decode(void)
{
    int c, high = -1;
    size_t i;
    mjb_decoder_init(&decoder);
    while ((c = getchar()) != EOF) {
        int v = hex_value(c);
        if (v < 0) {
            high = -1;
            continue;
        }
        if (high < 0) {
            high = v;
            continue;
        }
        if (mjb_decoder_feed(&decoder, (uint8_t)(high * 16 + v), &message)) {
            size_t n = mjb_encode_message(&message, wire, sizeof wire);
            printf("MSG ");
            describe(&message);
            printf("ENC ");
            print_hex(wire, n);
        }
        high = -1;
    }
    printf("ERRORS");
    for (i = 1; i < MJB_ERR_COUNT; ++i) {
        printf(" %lu", (unsigned long)decoder.errors[i]);
    }
    printf("\nFRAMES %lu\n", (unsigned long)decoder.frames);
    return 0;
}

static int run_firmware(void)
{
    mjb_joint_sample sample;
    mjb_hello hello;
    mjb_heartbeat heartbeat;
    size_t n;

    memset(&sample, 0, sizeof sample);
    sample.seq = 42;
    sample.timestamp_us = 4294967000u;
    sample.encoding = MJB_ENCODING_RADIANS;
    sample.n_channels = 3;
    sample.valid_mask = 0x5;
    sample.values.radians[0] = 0.25f;
    sample.values.radians[1] = -1.0f;
    sample.values.radians[2] = 0.125f;
    n = mjb_encode_joint_sample(&sample, wire, sizeof wire);
    print_hex(wire, n);

    sample.seq = 43;
    sample.encoding = MJB_ENCODING_COUNTS;
    sample.values.counts[0] = 4096;
    sample.values.counts[1] = -123456;
    sample.values.counts[2] = 0;
    n = mjb_encode_joint_sample(&sample, wire, sizeof wire);
    print_hex(wire, n);

    memset(&hello, 0, sizeof hello);
    hello.seq = 0;
    hello.timestamp_us = 17;
    hello.role = MJB_ROLE_DEVICE;
    hello.n_joints = 3;
    hello.sample_rate_hz = 100.0f;
    hello.heartbeat_period_ms = MJB_DEFAULT_HEARTBEAT_PERIOD_MS;
    hello.reply_requested = 1;
    strcpy(hello.joint_names[0], "hip_flexion_r");
    strcpy(hello.joint_names[1], "knee_angle_r");
    strcpy(hello.joint_names[2], "ankle_angle_r");
    n = mjb_encode_hello(&hello, wire, sizeof wire);
    print_hex(wire, n);

    heartbeat.seq = 9;
    heartbeat.timestamp_us = 1000000u;
    heartbeat.role = MJB_ROLE_DEVICE;
    heartbeat.heartbeat_period_ms = 100;
    heartbeat.status = 0;
    n = mjb_encode_heartbeat(&heartbeat, wire, sizeof wire);
    print_hex(wire, n);

    /* Too small a buffer and a count beyond the limits are refused. */
    if (mjb_encode_heartbeat(&heartbeat, wire, 10) != 0) {
        printf("FAIL: short buffer accepted\n");
        return 1;
    }
    sample.n_channels = MJB_MAX_CHANNELS + 1;
    if (mjb_encode_joint_sample(&sample, wire, sizeof wire) != 0) {
        printf("FAIL: too many channels accepted\n");
        return 1;
    }
    return 0;
}

#define EXPECT(cond)                                                   \
    do {                                                               \
        if (!(cond)) {                                                 \
            printf("FAIL line %d: %s\n", __LINE__, #cond);             \
            return 1;                                                  \
        }                                                              \
    } while (0)

static int run_watch(void)
{
    /* what an estimate's status bits alone make of a fresh estimate from a live host */
    static const struct {
        uint16_t status;
        mjb_host_state state;
    } verdicts[] = {
        {MJB_STATUS_MODEL_NOT_READY, MJB_HOST_ESTIMATE_UNUSABLE},
        {MJB_STATUS_INPUT_INVALID, MJB_HOST_ESTIMATE_UNUSABLE},
        {MJB_STATUS_ACTIVATION_STALE, MJB_HOST_ESTIMATE_UNUSABLE},
        {MJB_STATUS_INPUT_OUT_OF_RANGE, MJB_HOST_OK},
        {1u << 15, MJB_HOST_ESTIMATE_UNUSABLE}, /* a bit a later minor version may define */
    };
    mjb_host_watch watch;
    mjb_message m;
    mjb_host_state state;
    size_t k;
    const uint32_t t0 = 4294967000u; /* 296 us before micros() wraps */

    mjb_host_watch_init(&watch, 300000u, 50000u);
    EXPECT(mjb_host_watch_check(&watch, t0) == MJB_HOST_NEVER_SEEN);

    memset(&m, 0, sizeof m);
    m.msg_type = MJB_MSG_HEARTBEAT;
    m.u.heartbeat.role = MJB_ROLE_DEVICE; /* our own echo does not count as the host */
    mjb_host_watch_on_message(&watch, &m, t0);
    EXPECT(mjb_host_watch_check(&watch, t0) == MJB_HOST_NEVER_SEEN);

    m.u.heartbeat.role = MJB_ROLE_HOST;
    mjb_host_watch_on_message(&watch, &m, t0);
    EXPECT(mjb_host_watch_check(&watch, t0 + 1000u) == MJB_HOST_NO_ESTIMATE);

    memset(&m, 0, sizeof m);
    m.msg_type = MJB_MSG_ESTIMATE;
    m.u.estimate.sample_timestamp_us = t0 - 5000u;
    mjb_host_watch_on_message(&watch, &m, t0 + 2000u);
    EXPECT(mjb_host_watch_check(&watch, t0 + 2000u) == MJB_HOST_OK);
    /* across the wrap: 45 ms after the sample, still fresh */
    EXPECT(mjb_host_watch_check(&watch, t0 + 40000u) == MJB_HOST_OK);
    EXPECT(mjb_host_watch_check(&watch, t0 + 46000u) == MJB_HOST_ESTIMATE_STALE);
    EXPECT(mjb_host_watch_check(&watch, t0 + 2000u + 300001u) == MJB_HOST_GONE);

    m.u.estimate.sample_timestamp_us = t0 + 9000u;
    m.u.estimate.status = MJB_STATUS_INPUT_GAP | MJB_STATUS_BACKEND_DEGRADED;
    mjb_host_watch_on_message(&watch, &m, t0 + 10000u);
    EXPECT(mjb_host_watch_check(&watch, t0 + 10000u) == MJB_HOST_OK);
    for (k = 0; k < sizeof verdicts / sizeof verdicts[0]; ++k) {
        m.u.estimate.status = verdicts[k].status;
        mjb_host_watch_on_message(&watch, &m, t0 + 11000u);
        state = mjb_host_watch_check(&watch, t0 + 11000u);
        if (state != verdicts[k].state) {
            printf("status 0x%04x: ", (unsigned)verdicts[k].status);
        }
        EXPECT(state == verdicts[k].state);
    }

    EXPECT(mjb_crc32((const uint8_t *)"123456789", 9) == MJB_CRC_CHECK_VALUE);
    printf("watch ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "decode") == 0) {
        return run_decode();
    }
    if (argc == 2 && strcmp(argv[1], "firmware") == 0) {
        return run_firmware();
    }
    if (argc == 2 && strcmp(argv[1], "watch") == 0) {
        return run_watch();
    }
    fprintf(stderr, "usage: %s decode|firmware|watch\n", argv[0]);
    return 2;
}
