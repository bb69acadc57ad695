/*
 * Startup and port for the emulated Cortex-M boards (QEMU system emulation, see
 * /work/shared/notes/mcu-emulation.md): vector table, .data copy, .bss zeroing, FPU enable,
 * stack painting, and ee_port_write / ee_port_exit over ARM semihosting (bkpt 0xAB).
 * A fault exits with 100 + IPSR so that it becomes a non-zero QEMU exit status.
 */
#include <stddef.h>
#include <stdint.h>

#include "ee_port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern int main(void);

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define STACK_PAINT 0xA5A5A5A5u

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void ee_port_write(const char *s)
{
    semihost(SYS_WRITE0, (void *)(uintptr_t)s);
}

void ee_port_exit(int code)
{
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

/* Peak stack use: the painted words the run never overwrote, counted from the bottom. */
static uint32_t stack_used(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

static void report_stack(void)
{
    ee_tx_t t;
    t.len = 0;
    ee_tx_str(&t, "# stack_bytes");
    ee_tx_sp_u32(&t, stack_used());
    ee_tx_endl(&t);
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst;
    volatile uint32_t *p;
    uint32_t here;
    int rc;
    for (dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
#if defined(__ARM_FP)
    /* CP10/CP11 full access, else the first FPU instruction faults. */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    /* Paint below this frame (keep a margin for the frame itself). */
    p = &_sstack;
    here = (uint32_t)(uintptr_t)&here;
    while ((uint32_t)(uintptr_t)p < here - 64u) {
        *p++ = STACK_PAINT;
    }
    rc = main();
    report_stack();
    ee_port_exit(rc);
}

static void fault_exit(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ee_port_exit(100 + (int)(ipsr & 0x1FFu));
}

void NMI_Handler(void) { fault_exit(); }
void HardFault_Handler(void) { fault_exit(); }
void Default_Handler(void) { fault_exit(); }

typedef void (*ee_vector_t)(void);

__attribute__((section(".vectors"), used))
const ee_vector_t ee_vectors[16] = {
    (ee_vector_t)(uintptr_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};
