/*
 * The board functions example_firmware.c calls: a firmware provides these five for its
 * hardware (a test provides them on a POSIX host, over a pseudo-terminal).
 */
#ifndef MJCA_EXAMPLE_BOARD_H
#define MJCA_EXAMPLE_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "mjca_bridge.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The device clock in microseconds (Arduino's micros()), wrapping at 2^32. */
uint32_t board_micros(void);

/* One received byte from the host's UART: 1 and *byte set, or 0 when none is waiting. */
int board_uart_read(uint8_t *byte);

/* Queue n bytes for the host's UART without blocking for long. */
void board_uart_write(const uint8_t *data, size_t n);

/* Read the joint sensors now: fills sample->values, n_channels, valid_mask and
 * encoding (seq and timestamp_us are the firmware's). */
void board_read_joints(mjb_joint_sample *sample);

/* Act on a fresh, usable estimate from a live host (the watchdog said MJB_HOST_OK). */
void board_apply(const mjb_estimate *estimate);

/* No usable estimate: keep the actuators in their safe state; `why` says why. */
void board_safe_state(mjb_host_state why);

/* The example firmware (example_firmware.c): call example_setup() once at power-up and
 * example_poll() on every pass of the main loop. */
void example_setup(void);
void example_poll(void);

#ifdef __cplusplus
}
#endif

#endif /* MJCA_EXAMPLE_BOARD_H */
