/*
 * switch_aarch64.S — the fiber context switch for AArch64 (AAPCS64).
 * The same contract as switch_x86_64.S (read that one first):
 *
 *   void  sc__fiber_switch(void **save_sp, void *load_sp);
 *   void *sc__fiber_make(void *top, void (*entry)(void *), void *arg);
 *
 * A suspended context is its stack pointer; below it, 160 bytes hold the
 * callee-saved registers: x19-x28, the frame pointer x29, the link register
 * x30 (where to return), and the low halves of v8-v15 (d8-d15). FPCR is per
 * thread, shared by the fibers of a shard, as on x86-64.
 */
    .text

    .globl  sc__fiber_switch
    .hidden sc__fiber_switch
    .type   sc__fiber_switch, %function
    .p2align 4
sc__fiber_switch:
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x2, sp
    str     x2, [x0]            /* *save_sp */
    mov     sp, x1              /* now on the other stack */
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret                         /* to x30: the code that suspended this stack */
    .size   sc__fiber_switch, .-sc__fiber_switch

/* A fresh stack: 160 zeroed bytes, except x19 = arg, x20 = entry and
 * x30 = sc__fiber_start. After the switch, sp = top (16-byte aligned). */
    .globl  sc__fiber_make
    .hidden sc__fiber_make
    .type   sc__fiber_make, %function
    .p2align 4
sc__fiber_make:
    and     x0, x0, #~15
    sub     x0, x0, #160
    stp     xzr, xzr, [x0, #0]
    stp     xzr, xzr, [x0, #16]
    stp     xzr, xzr, [x0, #32]
    stp     xzr, xzr, [x0, #48]
    stp     xzr, xzr, [x0, #64]
    stp     xzr, xzr, [x0, #80]
    stp     xzr, xzr, [x0, #96]
    stp     xzr, xzr, [x0, #112]
    stp     xzr, xzr, [x0, #128]
    stp     xzr, xzr, [x0, #144]
    stp     x2, x1, [x0, #0]    /* x19 = arg, x20 = entry */
    adr     x3, sc__fiber_start
    str     x3, [x0, #88]       /* x30 */
    ret
    .size   sc__fiber_make, .-sc__fiber_make

/* The bottom frame of every fiber; unwinders stop here (no caller). */
    .type   sc__fiber_start, %function
    .p2align 4
sc__fiber_start:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x19
    blr     x20
    brk     #0                  /* entry returned: a bug */
    .cfi_endproc
    .size   sc__fiber_start, .-sc__fiber_start

    .section .note.GNU-stack, "", %progbits
