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
// and Shift+F5 ends QEMU. Screenshots go to test-artifacts/vscode-linux/.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const VSIX = process.env.VMDAP_VSIX || path.join(ROOT, 'extension', 'vmdap.vsix');
const ART = path.join(ROOT, 'test-artifacts', 'vscode-linux');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CODE_SERVER = path.join(__dirname, 'node_modules', '.bin', 'code-server');
const LINUX = process.env.VMDAP_LINUX_CACHE || path.join(os.homedir(), '.cache', 'vmdap', 'linux');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

async function waitHealthy(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('code-server did not come up');
}

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
  for (const [p, why] of [[CHROMIUM, 'chromium'], [CODE_SERVER, 'code-server (run setup.sh)'], [VSIX, 'the .vsix (npm run package)'],
    [path.join(LINUX, 'vmlinux'), 'the kernel (testdata/linux/fetch)'], ['/usr/bin/qemu-system-x86_64', 'QEMU']]) {
    if (!fs.existsSync(p)) {
      t.skip(`missing ${why}`);
      return;
    }
  }
  fs.mkdirSync(ART, { recursive: true });
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdap-code-linux-'));
  const ws = path.join(state, 'linux'); // the kernel tree
  const data = path.join(state, 'data');
  const ext = path.join(state, 'ext');
  fs.mkdirSync(path.join(ws, 'init'), { recursive: true });
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, 'init', 'main.c'), '// init/main.c of the kernel tree\n');
  // The marker names this run's QEMU (its -append) to find it afterwards.
  const marker = `vmdap_e2e=${path.basename(state)}`;
  fs.writeFileSync(path.join(ws, '.vscode', 'launch.json'), JSON.stringify({
    version: '0.2.0',
    configurations: [{
      type: 'vmdap', request: 'launch', name: 'Linux under QEMU', hypervisor: 'qemu',
      program: path.join(LINUX, 'vmlinuz'), symbols: path.join(LINUX, 'vmlinux'),
      args: `console=ttyS0 nokaslr ${marker}`, vcpus: 1, memory: 256,
    }],
  }));
  fs.mkdirSync(path.join(data, 'User'), { recursive: true });
  fs.writeFileSync(path.join(data, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off',
    'update.mode': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'window.restoreWindows': 'none', 'workbench.tips.enabled': false, 'chat.disableAIFeatures': true,
    'git.enabled': false, 'git.openRepositoryInParentFolders': 'never',
  }));
  execFileSync(CODE_SERVER, ['--user-data-dir', data, '--extensions-dir', ext, '--install-extension', VSIX], { stdio: 'pipe' });
  const port = await freePort();
  const env = { ...process.env, EXTENSIONS_GALLERY: '{"serviceUrl":""}' };
  const server = spawn(CODE_SERVER, ['--config', '/dev/null', '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', data, '--extensions-dir', ext, ws], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let serverLog = '';
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  let ctx;
  try {
    await waitHealthy(port, 30000);
    ctx = await chromium.launchPersistentContext(path.join(state, 'browser'), {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1600, height: 1000 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
    await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 60000 });
    await page.keyboard.press('Control+Shift+D');
    await page.waitForSelector('.debug-breakpoints', { state: 'attached', timeout: 30000 });
    // A function breakpoint from the command palette.
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget input');
    await page.keyboard.type('Debug: Add Function Breakpoint');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Add Function Breakpoint' }).first().waitFor({ timeout: 10000 });
    await page.keyboard.press('Enter');
    await page.waitForSelector('.debug-breakpoints input', { timeout: 10000 });
    await page.keyboard.type('start_kernel');
    await page.keyboard.press('Enter');
    await page.locator('.debug-breakpoints .monaco-list-row', { hasText: 'start_kernel' }).first().waitFor({ timeout: 10000 });
    await page.keyboard.press('F5');
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
    await page.keyboard.press('Shift+F5');
    await page.waitForSelector('.debug-toolbar', { state: 'hidden', timeout: 30000 });
    const deadline = Date.now() + 10000;
    while (qemuOf(marker).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.deepStrictEqual(qemuOf(marker), [], 'QEMU is gone after the session');
  } catch (e) {
    if (ctx) {
      const p = ctx.pages()[0];
      if (p) {
        await p.screenshot({ path: path.join(ART, 'failure.png') }).catch(() => {});
        fs.writeFileSync(path.join(ART, 'failure.html'), await p.content().catch(() => ''));
      }
    }
    fs.writeFileSync(path.join(ART, 'code-server.log'), serverLog);
    throw e;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    server.kill('SIGTERM');
    for (const pid of qemuOf(marker)) process.kill(pid, 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});
