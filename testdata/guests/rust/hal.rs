//! Port I/O for the Rust guest, built without debug information and with
//! rustc's default (legacy) symbol mangling.
#![no_std]

pub mod port {
    #[inline(never)]
    pub fn outb(port: u16, v: u8) {
        unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") v) };
    }

    /// Calls back into the kernel crate.
    #[inline(never)]
    pub fn notify(value: u32, cb: extern "C" fn(u32) -> u32) -> u32 {
        cb(value ^ 1) ^ 1
    }
}

#[inline(never)]
pub fn halt() {
    unsafe { core::arch::asm!("cli", "hlt") };
}
