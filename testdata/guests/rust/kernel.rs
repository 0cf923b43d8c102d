//! The Rust guest's kernel crate (full debug information, the legacy
//! symbol mangling rustc uses by default): statics by path, an enum with
//! data, Option, a slice and a &str, locals and arguments, frames through
//! the two crates below it, built without debug information so that their
//! frames are named by demangling their symbols (drivers: v0, hal: legacy).
//! Lines the tests stop at carry a marker comment "bp:NAME".
#![no_std]
#![no_main]

extern crate drivers;

use core::panic::PanicInfo;

pub mod sched {
    #[derive(Clone, Copy)]
    pub enum Event {
        Idle,
        Tick(u32),
        Irq { line: u8, count: u16 },
    }

    pub struct Task {
        pub pid: u32,
        pub name: &'static str,
        pub parent: Option<u32>,
        pub last: Event,
    }

    pub static mut TICKS: u64 = 0;
    pub static IDLE_NAME: &str = "idle";

    #[inline(never)]
    pub fn account(task: &mut Task, ev: Event, weights: &[u32]) -> u32 {
        let mut total: u32 = 0;
        for w in weights {
            total = total.wrapping_add(*w);
        }
        let bonus = match ev {
            Event::Idle => 0,
            Event::Tick(n) => n,
            Event::Irq { line, count } => line as u32 + count as u32,
        };
        task.last = ev;
        unsafe { TICKS += 1 };
        total + bonus // bp:account
    }
}

pub static mut SINK: u32 = 0;
pub static BANNER: &str = "rust kernel";
pub static PRIMES: [u32; 4] = [2, 3, 5, 7];
pub static MAYBE: Option<u16> = Some(513);

/// Called back from the drivers crate (no debug information).
#[no_mangle]
#[inline(never)]
pub extern "C" fn kernel_callback(value: u32) -> u32 {
    let doubled = value * 2;
    unsafe { SINK = doubled }; // bp:callback
    doubled
}

#[no_mangle]
pub extern "C" fn kmain(magic: u32) -> ! {
    let mut task = sched::Task { pid: 7, name: "init", parent: None, last: sched::Event::Idle };
    let child: Option<u32> = Some(42);
    let ev = sched::Event::Irq { line: 4, count: 300 };
    let tick = sched::Event::Tick(9);
    let weights: &[u32] = &PRIMES[1..];
    let idle = sched::Task { pid: 0, name: sched::IDLE_NAME, parent: Some(7), last: tick };
    let greeting: &str = BANNER;
    let r = sched::account(&mut task, ev, weights);
    let code = drivers::uart::report(r, child, kernel_callback);
    let ok = magic == 0x2badb002
        && matches!(idle.last, sched::Event::Tick(9))
        && greeting.len() == 11
        && MAYBE.unwrap_or(0) == 513
        && code == 0x10; // bp:kmain
    drivers::exit(if ok { 0x10 } else { 0x11 });
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    drivers::exit(0x12)
}
