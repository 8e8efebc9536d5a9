/*
 * A firmware's main loop on a POSIX host, using only the C codec for the protocol:
 * streams JointSample frames to a tty at a fixed rate, decodes the Estimate frames
 * that come back, checks the host watchdog before "applying" each one, and finally
 * stops hearing the host and checks that the watchdog says so.
 *
 *   bridge_firmware_demo TTY_PATH N_SAMPLES RATE_HZ
 *
 * Channel values are a formula of seq, so the test can check what the host received:
 * hip = 0.001 * seq, knee = -0.002 * seq, ankle = 0.5 (float32 rad).
 * Prints one line: "sent N estimates M ok K p50_us A p99_us B max_us C silent_state S".
 */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mjca_bridge.h"

#define MAX_SAMPLES 20000

static uint64_t sent_ns[MAX_SAMPLES];
static uint32_t latency_us[MAX_SAMPLES];
static mjb_decoder decoder;
static mjb_host_watch watch;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Decode what has arrived, waiting at most wait_ms for it; returns 0 when nothing came. */
static int service_rx(int fd, int wait_ms, uint64_t t0, size_t *n_estimates, size_t *n_ok)
{
    struct pollfd p;
    uint8_t buf[512];
    ssize_t n, i;
    mjb_message msg;
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, wait_ms) <= 0) {
        return 0;
    }
    n = read(fd, buf, sizeof buf);
    for (i = 0; i < n; ++i) {
        if (!mjb_decoder_feed(&decoder, buf[i], &msg)) {
            continue;
        }
        {
            uint64_t t = now_ns();
            uint32_t now_us = (uint32_t)((t - t0) / 1000u);
            mjb_host_watch_on_message(&watch, &msg, now_us);
            if (msg.msg_type == MJB_MSG_ESTIMATE && msg.u.estimate.sample_seq < MAX_SAMPLES) {
                latency_us[*n_estimates] =
                    (uint32_t)((t - sent_ns[msg.u.estimate.sample_seq]) / 1000u);
                ++*n_estimates;
                if (mjb_host_watch_check(&watch, now_us) == MJB_HOST_OK) {
                    ++*n_ok;
                }
            }
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    struct termios tio;
    uint8_t wire[MJB_MAX_ENCODED_FRAME_SIZE];
    mjb_joint_sample sample;
    size_t n_samples, k, n_estimates = 0, n_ok = 0, n;
    double rate_hz;
    uint64_t t0, period_ns;
    int fd, silent_state;

    if (argc != 4) {
        fprintf(stderr, "usage: %s TTY_PATH N_SAMPLES RATE_HZ\n", argv[0]);
        return 2;
    }
    n_samples = (size_t)strtoul(argv[2], NULL, 10);
    rate_hz = strtod(argv[3], NULL);
    if (n_samples == 0 || n_samples > MAX_SAMPLES || rate_hz <= 0) {
        fprintf(stderr, "need 0 < N_SAMPLES <= %d and RATE_HZ > 0\n", MAX_SAMPLES);
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_NOCTTY);
    if (fd < 0 || tcgetattr(fd, &tio) != 0) {
        perror(argv[1]);
        return 2;
    }
    cfmakeraw(&tio);
    tcsetattr(fd, TCSANOW, &tio);

    mjb_decoder_init(&decoder);
    mjb_host_watch_init(&watch, MJB_DEFAULT_HOST_TIMEOUT_MS * 1000u,
                        MJB_DEFAULT_MAX_ESTIMATE_AGE_MS * 1000u);
    memset(&sample, 0, sizeof sample);
    sample.encoding = MJB_ENCODING_RADIANS;
    sample.n_channels = 3;
    sample.valid_mask = 0x7;
    period_ns = (uint64_t)(1e9 / rate_hz);
    t0 = now_ns();
    for (k = 0; k < n_samples; ++k) {
        uint64_t deadline = t0 + k * period_ns;
        for (;;) {
            uint64_t t = now_ns();
            if (t >= deadline) {
                break;
            }
            service_rx(fd, (int)((deadline - t) / 1000000u), t0, &n_estimates, &n_ok);
        }
        sample.seq = (uint32_t)k;
        sample.timestamp_us = (uint32_t)((deadline - t0) / 1000u);
        sample.values.radians[0] = 0.001f * (float)k;
        sample.values.radians[1] = -0.002f * (float)k;
        sample.values.radians[2] = 0.5f;
        n = mjb_encode_joint_sample(&sample, wire, sizeof wire);
        sent_ns[k] = now_ns();
        if (write(fd, wire, n) != (ssize_t)n) {
            perror("write");
            return 1;
        }
    }
    /* Let the last estimates arrive, then hear nothing for longer than the host timeout. */
    {
        uint64_t until = now_ns() + 300000000u;
        while (now_ns() < until && n_estimates < n_samples) {
            service_rx(fd, 10, t0, &n_estimates, &n_ok);
        }
    }
    {
        uint64_t quiet_from = now_ns();
        while (now_ns() - quiet_from < (MJB_DEFAULT_HOST_TIMEOUT_MS + 100u) * 1000000u) {
            usleep(10000);
        }
        silent_state = (int)mjb_host_watch_check(&watch, (uint32_t)((now_ns() - t0) / 1000u));
    }
    qsort(latency_us, n_estimates, sizeof latency_us[0], compare_u32);
    printf("sent %lu estimates %lu ok %lu p50_us %lu p99_us %lu max_us %lu silent_state %d\n",
           (unsigned long)n_samples, (unsigned long)n_estimates, (unsigned long)n_ok,
           (unsigned long)(n_estimates ? latency_us[n_estimates / 2] : 0),
           (unsigned long)(n_estimates ? latency_us[(n_estimates * 99) / 100] : 0),
           (unsigned long)(n_estimates ? latency_us[n_estimates - 1] : 0), silent_state);
    close(fd);
    return 0;
}
