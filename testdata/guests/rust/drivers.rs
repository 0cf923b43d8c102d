//! Drivers of the Rust guest, built without debug information and with
//! v0 symbol mangling: a debugger names their frames by demangling.
#![no_std]

extern crate hal;

pub mod uart {
    #[inline(never)]
    pub fn report(value: u32, extra: Option<u32>, cb: extern "C" fn(u32) -> u32) -> u8 {
        for b in "ok\n".bytes() {
            hal::port::outb(0x3f8, b);
        }
        let sum = value.wrapping_add(extra.unwrap_or(0));
        if hal::port::notify(sum, cb) > 0 {
            0x10
        } else {
            0x11
        }
    }
}

#[inline(never)]
pub fn exit(code: u8) -> ! {
    hal::port::outb(0xf4, code);
    loop {
        hal::halt();
    }
}
