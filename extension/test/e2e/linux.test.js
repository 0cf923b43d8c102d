// Debian's cloud kernel (testdata/linux/fetch's; skipped without it, or
// with VMDAP_E2E_LINUX=0) under QEMU TCG, about 20 s, in real VS Code as
// a kernel developer first meets it. The workspace is a kernel tree (here
// just its init/main.c) and launch.json has no sourceMap; a function
// breakpoint on start_kernel from the command palette; F5 launches
// vmlinuz under QEMU with vmlinux's symbols. Checked: the stop shows
// start_kernel's frame in the tree's init/main.c, opened, the Breakpoints
// view offers the Linux exception filters, Globals hide the linker's
// discarded markers, the debug console's tasks lists the boot task,
// "Linux: kernel panic" stops the kernel that finds no root file system,
// QEMU dumps it from the debug console once it has panicked, Shift+F5
// ends QEMU, and the dump opens post-mortem (attach with coreFile) with the
// panic's message in the exception widget, the stack through
// mount_root_generic, and a continue refused. Screenshots go to
// test-artifacts/vscode-linux/.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ROOT, missing, withVSCode, runCommand, startDebugging } = require('./codeserver');

const ART = path.join(ROOT, 'test-artifacts', 'vscode-linux');
const LINUX = process.env.VMDAP_LINUX_CACHE || path.join(os.homedir(), '.cache', 'vmdap', 'linux');

// qemuOf returns the pids of the QEMUs whose command line names marker.
function qemuOf(marker) {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('qemu-system') && cmd.includes(marker)) out.push(Number(p));
    } catch (_) { /* gone */ }
  }
  return out;
}

test('Debian\'s kernel in real VS Code', { timeout: 300000 }, async (t) => {
  if (process.env.VMDAP_E2E_LINUX === '0') {
    t.skip('VMDAP_E2E_LINUX=0');
    return;
  }
  const why = missing([[path.join(LINUX, 'vmlinux'), 'the kernel (testdata/linux/fetch)'], ['/usr/bin/qemu-system-x86_64', 'QEMU']]);
  if (why) {
    t.skip(`missing ${why}`);
    return;
  }
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdap-code-linux-'));
  const ws = path.join(state, 'linux'); // the kernel tree
  fs.mkdirSync(path.join(ws, 'init'), { recursive: true });
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, 'init', 'main.c'), '// init/main.c of the kernel tree\n');
  // The marker names this run's QEMU (its -append) to find it afterwards.
  const marker = `vmdap_e2e=${path.basename(state)}`;
  const core = path.join(state, 'panic.core');
  fs.writeFileSync(path.join(ws, '.vscode', 'launch.json'), JSON.stringify({
    version: '0.2.0',
    configurations: [{
      type: 'vmdap', request: 'launch', name: 'Linux under QEMU', hypervisor: 'qemu',
      program: path.join(LINUX, 'vmlinuz'), symbols: path.join(LINUX, 'vmlinux'),
      args: `console=ttyS0 nokaslr ${marker}`, vcpus: 1, memory: 256,
    }, {
      type: 'vmdap', request: 'attach', name: 'Linux core dump', coreFile: core, program: path.join(LINUX, 'vmlinux'),
    }],
  }));
  try {
    await withVSCode({ state, folder: ws, art: ART }, async (page) => {
      await page.keyboard.press('Control+Shift+D');
      await page.waitForSelector('.debug-breakpoints', { state: 'attached', timeout: 30000 });
      // A function breakpoint from the command palette.
      await runCommand(page, 'Debug: Add Function Breakpoint');
      await page.waitForSelector('.debug-breakpoints input:focus', { timeout: 10000 }); // typed before it has focus, the first letters are lost
      await page.keyboard.type('start_kernel');
      await page.keyboard.press('Enter');
      await page.locator('.debug-breakpoints .monaco-list-row', { hasText: 'start_kernel' }).first().waitFor({ timeout: 10000 });
      await startDebugging(page);
      const stack = page.locator('.debug-call-stack');
      const rows = () => stack.locator('.monaco-list-row').evaluateAll((es) => es.map((e) => e.getAttribute('aria-label') || ''));
      // start_kernel's frame in the tree's init/main.c, opened (its callers'
      // files are not in this tree: VS Code folds them).
      await stack.locator('.monaco-list-row', { hasText: 'start_kernel' }).first().waitFor({ timeout: 120000 });
      const frames = await rows();
      assert.ok(frames.some((l) => /Stack Frame start_kernel, line \d+, main\.c/.test(l)), frames.join('\n'));
      await page.waitForSelector('.tab.active:has-text("main.c")', { timeout: 20000 });
      // The Linux exception filters.
      const bps = await page.locator('.debug-breakpoints .monaco-list-row').evaluateAll((es) => es.map((e) => e.getAttribute('aria-label') || ''));
      assert.ok(bps.includes('Linux: kernel panic'), bps.join('\n'));
      // Globals: no variable the linker discarded (address 0).
      const vars = page.locator('.debug-variables');
      await vars.locator('[role=treeitem]', { hasText: 'Globals' }).first().click();
      await vars.locator('[role=treeitem][aria-label*=", value"]').nth(4).waitFor({ timeout: 20000 });
      const globals = await vars.innerText();
      assert.doesNotMatch(globals, /__UNIQUE_ID___addressable/);
      await page.screenshot({ path: path.join(ART, 'start_kernel.png') });
      // The debug console's tasks.
      await page.locator('.repl-input-wrapper .view-lines').click();
      await page.keyboard.type('tasks');
      await page.keyboard.press('Enter');
      await page.locator('.repl').getByText('swapper').first().waitFor({ timeout: 20000 });
      // On to the panic: no initrd, no root file system.
      await page.keyboard.press('F5');
      // The stop's description, the panic's message, heads the Call Stack
      // and the exception widget.
      await page.getByText(/Kernel panic - not syncing: VFS/).first().waitFor({ timeout: 180000 });
      await page.screenshot({ path: path.join(ART, 'panic.png') });
      assert.strictEqual(qemuOf(marker).length, 1, 'QEMU runs the session');
      // Let the kernel finish panicking, pause it, and have QEMU dump it
      // from the debug console.
      await page.keyboard.press('F5');
      await page.locator('.debug-toolbar .codicon-debug-pause').waitFor({ timeout: 30000 });
      await page.waitForTimeout(3000); // panic() prints its message and waits
      await page.keyboard.press('F6');
      await page.locator('.debug-toolbar .codicon-debug-continue').waitFor({ timeout: 60000 });
      await page.locator('.repl-input-wrapper .view-lines').click();
      await page.keyboard.type(`monitor dump-guest-memory ${core}`);
      await page.keyboard.press('Enter');
      for (const deadline = Date.now() + 60000; !(fs.existsSync(core) && fs.statSync(core).size > 0);) {
        assert.ok(Date.now() < deadline, 'no core dump from QEMU');
        await new Promise((r) => setTimeout(r, 200));
      }
      await page.waitForTimeout(1000); // the monitor's answer: the dump is whole
      await page.keyboard.press('Shift+F5');
      await page.waitForSelector('.debug-toolbar', { state: 'hidden', timeout: 30000 });
      const deadline = Date.now() + 10000;
      while (qemuOf(marker).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.deepStrictEqual(qemuOf(marker), [], 'QEMU is gone after the session');
      // Post-mortem: the dump opens stopped where the kernel panicked, with
      // the panic's message in the exception widget; it cannot run.
      await runCommand(page, 'Debug: Select and Start Debugging');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Linux core dump' }).first().click();
      await page.getByText(/Kernel panic - not syncing: VFS/).first().waitFor({ timeout: 60000 });
      // The frames with no source in this tree are folded: unfold them.
      await stack.locator('.monaco-list-row', { hasText: 'kernel_init_freeable' }).first().waitFor({ timeout: 30000 });
      await stack.getByText(/Show \d+ More Stack Frames/).first().click();
      await stack.locator('.monaco-list-row', { hasText: 'mount_root_generic' }).first().waitFor({ timeout: 30000 });
      await page.screenshot({ path: path.join(ART, 'core-dump.png') });
      await page.keyboard.press('F5');
      await page.getByText(/this is a core dump/).first().waitFor({ timeout: 20000 });
      await page.keyboard.press('Shift+F5');
      await page.waitForSelector('.debug-toolbar', { state: 'hidden', timeout: 30000 });
    });
  } finally {
    for (const pid of qemuOf(marker)) process.kill(pid, 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});
