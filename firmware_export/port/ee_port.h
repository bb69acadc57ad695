/*
 * Minimal text output for transcripts on any target: the platform supplies ee_port_write (stdio on a
 * host, semihosting on bare-metal Cortex-M) and ee_port_exit; formatting is ours so that no printf
 * (several KB of flash on a microcontroller) is linked.
 */
#ifndef EE_PORT_H
#define EE_PORT_H

#include <stddef.h>
#include <stdint.h>

void ee_port_write(const char *s);   /* NUL-terminated text, no newline added */
void ee_port_exit(int code);         /* does not return on bare metal */

#define EE_TX_BUF 128

typedef struct {
    char buf[EE_TX_BUF];
    size_t len;
} ee_tx_t;

static inline void ee_tx_flush(ee_tx_t *t)
{
    t->buf[t->len] = '\0';
    ee_port_write(t->buf);
    t->len = 0;
}

static inline void ee_tx_char(ee_tx_t *t, char c)
{
    if (t->len >= EE_TX_BUF - 1u) {
        ee_tx_flush(t);
    }
    t->buf[t->len++] = c;
}

static inline void ee_tx_str(ee_tx_t *t, const char *s)
{
    while (*s) {
        ee_tx_char(t, *s++);
    }
}

static inline void ee_tx_u32(ee_tx_t *t, uint32_t v)
{
    char d[10];
    int n = 0;
    do {
        d[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        ee_tx_char(t, d[--n]);
    }
}

/* Magnitude through uint32_t so that INT32_MIN prints without overflow. */
static inline void ee_tx_i32(ee_tx_t *t, int32_t v)
{
    if (v < 0) {
        ee_tx_char(t, '-');
        ee_tx_u32(t, 0u - (uint32_t)v);
    } else {
        ee_tx_u32(t, (uint32_t)v);
    }
}

/* " v" separator then value: transcript lines are "tag v v v ...". */
static inline void ee_tx_sp_i32(ee_tx_t *t, int32_t v)
{
    ee_tx_char(t, ' ');
    ee_tx_i32(t, v);
}

static inline void ee_tx_sp_u32(ee_tx_t *t, uint32_t v)
{
    ee_tx_char(t, ' ');
    ee_tx_u32(t, v);
}

static inline void ee_tx_endl(ee_tx_t *t)
{
    ee_tx_char(t, '\n');
    ee_tx_flush(t);
}

#endif /* EE_PORT_H */
