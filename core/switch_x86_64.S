/*
 * switch_x86_64.S — the fiber context switch for x86-64 (System V ABI).
 *
 * A suspended context is nothing but a stack pointer: the registers the ABI
 * asks a function to preserve (rbx, rbp, r12-r15) are stored on the stack
 * being left, below the return address its call pushed; its stack pointer
 * is saved, the other stack's pointer is loaded, its registers are loaded,
 * and a jump to its return address resumes whatever code suspended it. Everything else (rax, rcx, ..., the vector
 * registers) the C caller already treats as clobbered by a call.
 *
 * The floating-point control words (MXCSR, the x87 control word) are not
 * switched: they are per thread, shared by every fiber of a shard, as with
 * setjmp/longjmp. A fiber that changes the rounding mode changes it for the
 * shard. Boost.Context saves them; glibc's swapcontext saves them and also
 * makes a system call for the signal mask.
 *
 *   void  sc__fiber_switch(void **save_sp, void *load_sp);
 *   void *sc__fiber_make(void *top, void (*entry)(void *), void *arg);
 *
 * sc__fiber_make lays out a fresh stack so that the first switch into it
 * "returns" into sc__fiber_start, which calls entry(arg). entry never
 * returns (a finished fiber switches away for good instead).
 */
    .text

    .globl  sc__fiber_switch
    .hidden sc__fiber_switch
    .type   sc__fiber_switch, @function
    .p2align 4
sc__fiber_switch:
    /* LAB 06 BEGIN: save rbx rbp r12-r15 below the return address; swap stacks; restore; jump */
    leaq    -48(%rsp), %rsp     /* below the return address: room for six registers */
    movq    %r15, 0(%rsp)
    movq    %r14, 8(%rsp)
    movq    %r13, 16(%rsp)
    movq    %r12, 24(%rsp)
    movq    %rbx, 32(%rsp)
    movq    %rbp, 40(%rsp)
    movq    %rsp, (%rdi)        /* *save_sp: the registers, then the return address */
    movq    %rsi, %rsp          /* now on the other stack */
    movq    0(%rsp), %r15
    movq    8(%rsp), %r14
    movq    16(%rsp), %r13
    movq    24(%rsp), %r12
    movq    32(%rsp), %rbx
    movq    40(%rsp), %rbp
    movq    48(%rsp), %rcx      /* the other stack's return address */
    leaq    56(%rsp), %rsp
    /* A jump, not a ret: the CPU predicts a ret from its stack of recent
     * calls, which after a stack switch is always wrong; an indirect jump is
     * predicted from where it went before. */
    jmp     *%rcx
    /* LAB 06 END: ret */
    .size   sc__fiber_switch, .-sc__fiber_switch

/*
 * A fresh stack, from the top down (8-byte slots):
 *   top-8, top-16   zero: padding, and a null "return address" for debuggers
 *   top-24          &sc__fiber_start: the "return address" sc__fiber_switch jumps to
 *   top-32..top-72  rbp, rbx, r12 = arg, r13 = entry, r14, r15
 * After the switch, rsp = top-16, 16-byte aligned as a call instruction wants.
 */
    .globl  sc__fiber_make
    .hidden sc__fiber_make
    .type   sc__fiber_make, @function
    .p2align 4
sc__fiber_make:
    andq    $-16, %rdi
    leaq    -72(%rdi), %rax     /* the saved stack pointer of the new context */
    movq    $0, 0(%rax)         /* r15 */
    movq    $0, 8(%rax)         /* r14 */
    movq    %rsi, 16(%rax)      /* r13: entry */
    movq    %rdx, 24(%rax)      /* r12: arg */
    movq    $0, 32(%rax)        /* rbx */
    movq    $0, 40(%rax)        /* rbp: 0 ends frame-pointer walks */
    leaq    sc__fiber_start(%rip), %rcx
    movq    %rcx, 48(%rax)
    movq    $0, 56(%rax)
    movq    $0, 64(%rax)
    ret
    .size   sc__fiber_make, .-sc__fiber_make

/* The bottom frame of every fiber. The CFI says "no caller": unwinders (the
 * stall detector's backtrace, gdb) stop here instead of walking off the
 * stack. */
    .type   sc__fiber_start, @function
    .p2align 4
sc__fiber_start:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2                         /* entry returned: a bug in the caller of make */
    .cfi_endproc
    .size   sc__fiber_start, .-sc__fiber_start

    .section .note.GNU-stack, "", @progbits
