/*
 * An example firmware main loop for the mjca-edge protocol (PROTOCOL.md), written on
 * the C codec alone. Copy it and provide the board functions of example_board.h.
 *
 *   example_setup();              once, at power-up
 *   for (;;) example_poll();      as often as the main loop comes round
 *
 * Each pass: decode every byte the host sent (answering a Hello that asks for one and
 * feeding every message to the host watchdog), take a joint sample when its period is
 * due and send it, send a heartbeat every heartbeat period, then either apply the
 * newest estimate, when the watchdog says the host is alive and the estimate fresh and
 * usable, or keep the safe state. Nothing here blocks: the main loop stays free for
 * the controller.
 */
#include "example_board.h"

#ifndef EXAMPLE_SAMPLE_PERIOD_US
#define EXAMPLE_SAMPLE_PERIOD_US 1000u /* 1 kHz */
#endif
#ifndef EXAMPLE_CHANNELS
#define EXAMPLE_CHANNELS 3u
#endif

static mjb_decoder decoder;
static mjb_host_watch watch;
static uint8_t wire[MJB_MAX_ENCODED_FRAME_SIZE];
static uint32_t sample_seq, heartbeat_seq, hello_seq;
static uint32_t next_sample_us, next_heartbeat_us;
static uint32_t applied_estimate_seq;
static uint8_t applied_any;

static void send_hello(uint8_t reply_requested)
{
    static mjb_hello hello; /* static: its name tables are 2.5 kB, too much for a stack */
    static const char *const names[EXAMPLE_CHANNELS] = {"hip_flexion_r", "knee_angle_r",
                                                       "ankle_angle_r"};
    size_t i, n;
    hello.seq = hello_seq++;
    hello.timestamp_us = board_micros();
    hello.role = MJB_ROLE_DEVICE;
    hello.n_joints = (uint8_t)EXAMPLE_CHANNELS;
    hello.n_muscles = 0; /* the host names the muscles */
    hello.encoding = MJB_ENCODING_RADIANS;
    hello.sample_rate_hz = 1e6f / (float)EXAMPLE_SAMPLE_PERIOD_US;
    hello.heartbeat_period_ms = (uint16_t)MJB_DEFAULT_HEARTBEAT_PERIOD_MS;
    hello.reply_requested = reply_requested;
    for (i = 0; i < EXAMPLE_CHANNELS; ++i) {
        for (n = 0; names[i][n] != '\0' && n < MJB_MAX_NAME_BYTES; ++n) {
            hello.joint_names[i][n] = names[i][n];
        }
        hello.joint_names[i][n] = '\0';
    }
    n = mjb_encode_hello(&hello, wire, sizeof wire);
    board_uart_write(wire, n);
}

void example_setup(void)
{
    uint32_t now;
    mjb_decoder_init(&decoder);
    mjb_host_watch_init(&watch, MJB_DEFAULT_HOST_TIMEOUT_MS * 1000u,
                        MJB_DEFAULT_MAX_ESTIMATE_AGE_MS * 1000u);
    /* A 0x00 first ends whatever half frame the host's decoder holds from before a reset. */
    wire[0] = 0;
    board_uart_write(wire, 1);
    send_hello(1);
    now = board_micros();
    next_sample_us = now;
    next_heartbeat_us = now;
}

static void receive(void)
{
    uint8_t byte;
    mjb_message message;
    while (board_uart_read(&byte)) {
        if (!mjb_decoder_feed(&decoder, byte, &message)) {
            continue;
        }
        mjb_host_watch_on_message(&watch, &message, board_micros());
        if (message.msg_type == MJB_MSG_HELLO && message.u.hello.role == MJB_ROLE_HOST &&
            message.u.hello.reply_requested) {
            send_hello(0);
        }
    }
}

/* Unsigned differences stay right across the 2^32 us wrap of the device clock. */
static int due(uint32_t now, uint32_t when)
{
    return (int32_t)(now - when) >= 0;
}

static void send_sample(uint32_t now)
{
    mjb_joint_sample sample;
    size_t n;
    board_read_joints(&sample);
    sample.seq = sample_seq++;
    sample.timestamp_us = now;
    n = mjb_encode_joint_sample(&sample, wire, sizeof wire);
    board_uart_write(wire, n);
}

static void send_heartbeat(uint32_t now)
{
    mjb_heartbeat heartbeat;
    size_t n;
    heartbeat.seq = heartbeat_seq++;
    heartbeat.timestamp_us = now;
    heartbeat.role = MJB_ROLE_DEVICE;
    heartbeat.heartbeat_period_ms = (uint16_t)MJB_DEFAULT_HEARTBEAT_PERIOD_MS;
    heartbeat.status = 0;
    n = mjb_encode_heartbeat(&heartbeat, wire, sizeof wire);
    board_uart_write(wire, n);
}

void example_poll(void)
{
    uint32_t now;
    mjb_host_state state;
    receive();
    now = board_micros();
    if (due(now, next_sample_us)) {
        send_sample(now);
        next_sample_us += EXAMPLE_SAMPLE_PERIOD_US;
        if (due(now, next_sample_us)) { /* fell a period behind: skip, never burst */
            next_sample_us = now + EXAMPLE_SAMPLE_PERIOD_US;
        }
    }
    if (due(now, next_heartbeat_us)) {
        send_heartbeat(now);
        next_heartbeat_us = now + MJB_DEFAULT_HEARTBEAT_PERIOD_MS * 1000u;
    }
    state = mjb_host_watch_check(&watch, board_micros());
    if (state != MJB_HOST_OK) {
        board_safe_state(state);
    } else if (!applied_any || watch.estimate.seq != applied_estimate_seq) {
        applied_any = 1;
        applied_estimate_seq = watch.estimate.seq;
        board_apply(&watch.estimate);
    }
}
