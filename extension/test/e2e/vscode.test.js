// Real VS Code (code-server, the VS Code 1.100 web build) in headless
// Chromium, driven by playwright-core: open the example workspace with the
// extension installed from the built .vsix, set a breakpoint with F9, start
// with F5, check the call stack and the Variables view, step over, check
// the line moved; with "vmdap.trace" on, the DAP traffic is in the vmdap
// output channel. Screenshots go to test-artifacts/vscode/.
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
const WS = path.join(ROOT, 'examples');
const SRC = path.join(WS, 'kernel', 'main.c');
const ART = path.join(ROOT, 'test-artifacts', 'vscode');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CODE_SERVER = path.join(__dirname, 'node_modules', '.bin', 'code-server');

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

// findFiles returns the files named name under dir, recursively.
function findFiles(dir, name) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, name));
    else if (e.name === name) out.push(p);
  }
  return out;
}

function lineOf(marker) {
  const i = fs.readFileSync(SRC, 'utf8').split('\n').findIndex((l) => l.includes(marker));
  assert.ok(i >= 0);
  return i + 1;
}

test('F9, F5 and F10 in real VS Code', { timeout: 240000 }, async (t) => {
  for (const [p, why] of [[CHROMIUM, 'chromium'], [CODE_SERVER, 'code-server (run setup.sh)'], [VSIX, 'the .vsix (npm run package)'], ['/dev/kvm', '/dev/kvm']]) {
    if (!fs.existsSync(p)) {
      t.skip(`missing ${why}`);
      return;
    }
  }
  assert.ok(fs.existsSync(path.join(WS, 'kernel', 'kernel.elf')), 'make -C examples/kernel first');
  fs.mkdirSync(ART, { recursive: true });
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdap-code-'));
  const data = path.join(state, 'data');
  const ext = path.join(state, 'ext');
  fs.mkdirSync(path.join(data, 'User'), { recursive: true });
  fs.writeFileSync(path.join(data, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off',
    'update.mode': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'window.restoreWindows': 'none', 'workbench.tips.enabled': false, 'chat.disableAIFeatures': true,
    'git.enabled': false, 'git.openRepositoryInParentFolders': 'never', 'vmdap.trace': true,
  }));
  execFileSync(CODE_SERVER, ['--user-data-dir', data, '--extensions-dir', ext, '--install-extension', VSIX], { stdio: 'pipe' });
  const port = await freePort();
  const env = { ...process.env, EXTENSIONS_GALLERY: '{"serviceUrl":""}' };
  const server = spawn(CODE_SERVER, ['--config', '/dev/null', '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', data, '--extensions-dir', ext, WS], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let serverLog = '';
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  const browserDir = path.join(state, 'browser');
  let ctx;
  try {
    await waitHealthy(port, 30000);
    ctx = await chromium.launchPersistentContext(browserDir, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1600, height: 1000 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(WS)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 60000 });
    // Open kernel/main.c through Quick Open.
    await page.keyboard.press('Control+P');
    await page.waitForSelector('.quick-input-widget input');
    await page.keyboard.type('kernel/main.c');
    const result = page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.c' }).first();
    await result.waitFor({ timeout: 30000 });
    await result.click();
    await page.waitForSelector('.monaco-editor .view-lines', { timeout: 30000 });
    await page.waitForSelector('.tab.active:has-text("main.c")', { timeout: 30000 });
    const bpLine = lineOf('int total = sum_squares(5);');
    await page.click('.monaco-editor .view-lines');
    await page.keyboard.press('Control+G');
    await page.waitForSelector('.quick-input-widget input');
    await page.keyboard.type(String(bpLine));
    await page.keyboard.press('Enter');
    await page.waitForTimeout(500); // F9 right after the go-to-line box closes is lost
    await page.keyboard.press('F9');
    await page.waitForSelector('.codicon-debug-breakpoint', { timeout: 15000 });
    await page.keyboard.press('F5');
    await page.waitForSelector('.debug-toolbar', { timeout: 60000 });
    const callStack = page.locator('.debug-call-stack');
    await page.getByText(/Paused on breakpoint/i).first().waitFor({ timeout: 60000 });
    await callStack.getByText('kmain').first().waitFor({ timeout: 20000 });
    const stackText = await callStack.innerText();
    assert.match(stackText, /kmain/);
    assert.match(stackText, new RegExp(`main\\.c\\s*${bpLine}`));
    // Variables: a local (Locals is expanded) and a register.
    const vars = page.locator('.debug-variables');
    const row = (label) => vars.locator(`[role=treeitem][aria-label^="${label}"]`).first();
    await row('total, value').waitFor({ timeout: 20000 });
    await vars.locator('[role=treeitem]', { hasText: 'Registers' }).first().click();
    await vars.locator('[role=treeitem]', { hasText: 'General' }).first().click();
    await row('rax, value').waitFor({ timeout: 20000 });
    const varsText = await vars.innerText();
    assert.match(varsText, /total/);
    assert.match(varsText, /rax/);
    await page.screenshot({ path: path.join(ART, 'paused.png') });
    // Step over: the current line moves to the next statement.
    await page.click('.monaco-editor .view-lines');
    await page.keyboard.press('F10');
    const next = lineOf('puts("sum of squares: ");');
    await callStack.getByText(new RegExp(`main\\.c\\s*${next}`)).first().waitFor({ timeout: 30000 });
    await page.getByText(/Paused on step/i).first().waitFor({ timeout: 30000 });
    await row('total, value 30').waitFor({ timeout: 20000 }); // sum_squares(5) ran
    await page.screenshot({ path: path.join(ART, 'after-step.png') });
    // The extension's context-menu command: integers in hex (30 = 0x1e).
    await row('total, value 30').click({ button: 'right' });
    const toggle = page.locator('.context-view .action-label', { hasText: 'Toggle Hexadecimal Display' }).first();
    await toggle.waitFor({ timeout: 10000 });
    await toggle.hover();
    await page.waitForTimeout(300); // a menu ignores a click right after it opens
    await toggle.click();
    await row('total, value 0x1e').waitFor({ timeout: 20000 });
    await page.screenshot({ path: path.join(ART, 'hex.png') });
    await page.keyboard.press('Shift+F5');
    await page.waitForSelector('.debug-toolbar', { state: 'hidden', timeout: 30000 });
    // "vmdap.trace": the DAP traffic is in the vmdap output channel's log
    // (a LogOutputChannel keeps only what its level, Info, shows).
    const traced = findFiles(path.join(data, 'logs'), 'vmdap.log').map((f) => fs.readFileSync(f, 'utf8')).join('');
    assert.match(traced, /→ .*"command":"launch"/);
    assert.match(traced, /← .*"event":"stopped"/);
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
    fs.rmSync(state, { recursive: true, force: true });
  }
});
