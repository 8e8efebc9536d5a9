/*
 * The board functions of firmware_bridge/c/example_board.h on a POSIX host, so the example
 * firmware runs unchanged in the tests: the "UART" is a pseudo-terminal this program
 * creates (its other end's path is printed for the host to open), the clock is
 * CLOCK_MONOTONIC (optionally started just before the 32-bit wrap), and the joints are a
 * formula of the sample count: hip 0.001 k, knee -0.002 k, ankle 0.05 rad.
 *
 *   posix_board N_SAMPLES [CLOCK_START_US]
 *
 * stdout: "PTY <path>"; once the host has spoken, the firmware runs; after N samples
 * "STREAMED"; 800 ms later one line of figures:
 *   "sent N applied A n_torques T max_age_us G latency_p50_us L50 latency_p99_us L99
 *    final_state S"
 * (applied: estimates the watchdog let through; latency: sample read to estimate applied;
 * final_state: the watchdog's verdict at the end, an mjb_host_state).
 */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 600
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "example_board.h"

#define MAX_SAMPLES 20000

static int uart;
static uint64_t start_ns;
static uint32_t clock_start_us;
static size_t samples_read;
static uint64_t read_ns[MAX_SAMPLES];
static uint32_t latency_us[MAX_SAMPLES];
static size_t applied;
static unsigned n_torques = 255;
static uint32_t max_age_us;
static mjb_host_state last_state = MJB_HOST_NEVER_SEEN;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t board_micros(void)
{
    return clock_start_us + (uint32_t)((now_ns() - start_ns) / 1000u);
}

int board_uart_read(uint8_t *byte)
{
    return read(uart, byte, 1) == 1;
}

void board_uart_write(const uint8_t *data, size_t n)
{
    while (n > 0) {
        ssize_t written = write(uart, data, n);
        if (written <= 0) {
            return; /* a UART drops what it cannot send */
        }
        data += written;
        n -= (size_t)written;
    }
}

void board_read_joints(mjb_joint_sample *sample)
{
    float k = (float)samples_read;
    sample->encoding = MJB_ENCODING_RADIANS;
    sample->n_channels = 3;
    sample->valid_mask = 0x7;
    sample->values.radians[0] = 0.001f * k;
    sample->values.radians[1] = -0.002f * k;
    sample->values.radians[2] = 0.05f;
    if (samples_read < MAX_SAMPLES) {
        read_ns[samples_read] = now_ns();
    }
    ++samples_read;
}

void board_apply(const mjb_estimate *estimate)
{
    if (estimate->sample_seq < samples_read && estimate->sample_seq < MAX_SAMPLES &&
        applied < MAX_SAMPLES) {
        latency_us[applied] = (uint32_t)((now_ns() - read_ns[estimate->sample_seq]) / 1000u);
    }
    ++applied;
    n_torques = estimate->n_torques;
    if (estimate->activation_age_us > max_age_us) {
        max_age_us = estimate->activation_age_us;
    }
    last_state = MJB_HOST_OK;
}

void board_safe_state(mjb_host_state why)
{
    last_state = why;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    struct termios tio;
    struct pollfd host;
    size_t n_samples, n_latencies;
    uint64_t streamed_at = 0;
    int terminal;
    const char *path;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s N_SAMPLES [CLOCK_START_US]\n", argv[0]);
        return 2;
    }
    n_samples = (size_t)strtoul(argv[1], NULL, 10);
    clock_start_us = argc == 3 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0u;
    uart = posix_openpt(O_RDWR | O_NOCTTY);
    if (uart < 0 || grantpt(uart) != 0 || unlockpt(uart) != 0 || !(path = ptsname(uart))) {
        perror("pty");
        return 2;
    }
    /* Hold the other end open in raw mode, so a host that closes and reopens it keeps
     * the link, as a USB-serial port would. */
    terminal = open(path, O_RDWR | O_NOCTTY);
    if (terminal < 0 || tcgetattr(terminal, &tio) != 0) {
        perror(path);
        return 2;
    }
    cfmakeraw(&tio);
    tcsetattr(terminal, TCSANOW, &tio);
    printf("PTY %s\n", path);
    fflush(stdout);
    host.fd = uart;
    host.events = POLLIN;
    if (poll(&host, 1, 60000) != 1) { /* the board powers up once the host is there */
        fprintf(stderr, "the host never spoke\n");
        return 1;
    }
    fcntl(uart, F_SETFL, fcntl(uart, F_GETFL) | O_NONBLOCK);
    start_ns = now_ns();
    example_setup();
    for (;;) {
        example_poll();
        if (!streamed_at && samples_read >= n_samples) {
            streamed_at = now_ns();
            printf("STREAMED\n");
            fflush(stdout);
        }
        if (streamed_at && now_ns() - streamed_at > 800000000u) {
            break;
        }
        poll(&host, 1, 0);
        usleep(100);
    }
    n_latencies = applied < MAX_SAMPLES ? applied : MAX_SAMPLES;
    qsort(latency_us, n_latencies, sizeof latency_us[0], compare_u32);
    printf("sent %lu applied %lu n_torques %u max_age_us %lu latency_p50_us %lu "
           "latency_p99_us %lu final_state %d\n",
           (unsigned long)samples_read, (unsigned long)applied, n_torques,
           (unsigned long)max_age_us,
           (unsigned long)(n_latencies ? latency_us[n_latencies / 2] : 0),
           (unsigned long)(n_latencies ? latency_us[(n_latencies * 99) / 100] : 0),
           (int)last_state);
    close(terminal);
    close(uart);
    return 0;
}
