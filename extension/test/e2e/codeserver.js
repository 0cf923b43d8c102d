// What the real-VS-Code tests share: code-server (the VS Code web build)
// with the extension installed from the built .vsix, opened on a folder in
// headless Chromium driven by playwright-core; on failure a screenshot,
// the page and code-server's log go to the test's artifacts folder.
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const VSIX = process.env.VMDAP_VSIX || path.join(ROOT, 'extension', 'vmdap.vsix');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CODE_SERVER = path.join(__dirname, 'node_modules', '.bin', 'code-server');

// missing names the first of what a real-VS-Code test needs (and the
// [path, what] pairs of extra) that is not there, or ''.
function missing(extra = []) {
  for (const [p, why] of [[CHROMIUM, 'chromium'], [CODE_SERVER, 'code-server (run setup.sh)'], [VSIX, 'the .vsix (npm run package)'], ...extra]) {
    if (!fs.existsSync(p)) return why;
  }
  return '';
}

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

// withVSCode opens folder in VS Code, with its state (user data,
// extensions, browser profile) under state and the user settings
// settings (on top of quiet defaults), and runs fn(page, { data }) with
// the workbench and its Explorer shown.
async function withVSCode({ state, folder, art, settings = {} }, fn) {
  fs.mkdirSync(art, { recursive: true });
  const data = path.join(state, 'data');
  const ext = path.join(state, 'ext');
  fs.mkdirSync(path.join(data, 'User'), { recursive: true });
  fs.writeFileSync(path.join(data, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off',
    'update.mode': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'window.restoreWindows': 'none', 'workbench.tips.enabled': false, 'chat.disableAIFeatures': true,
    'git.enabled': false, 'git.openRepositoryInParentFolders': 'never', ...settings,
  }));
  execFileSync(CODE_SERVER, ['--user-data-dir', data, '--extensions-dir', ext, '--install-extension', VSIX], { stdio: 'pipe' });
  const port = await freePort();
  const env = { ...process.env, EXTENSIONS_GALLERY: '{"serviceUrl":""}' };
  const server = spawn(CODE_SERVER, ['--config', '/dev/null', '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', data, '--extensions-dir', ext, folder], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 60000 });
    await fn(page, { data });
  } catch (e) {
    if (ctx) {
      const p = ctx.pages()[0];
      if (p) {
        await p.screenshot({ path: path.join(art, 'failure.png') }).catch(() => {});
        fs.writeFileSync(path.join(art, 'failure.html'), await p.content().catch(() => ''));
      }
    }
    fs.writeFileSync(path.join(art, 'code-server.log'), serverLog);
    throw e;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    server.kill('SIGTERM');
  }
}

// runCommand runs a command from the palette (F1) by its title
// ("Debug: Add Function Breakpoint"; the list shows the category apart).
async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget input:focus', { timeout: 10000 }); // typed before it has focus, letters are lost
  await page.keyboard.type(title);
  const name = title.replace(/^[^:]+: /, '');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 10000 });
  await page.keyboard.press('Enter');
}

// startDebugging presses F5 until a debug session has begun (its toolbar
// shows): an F5 that lands while the workbench is still settling (a
// breakpoint list just edited, a box just closed) is lost, and a second
// one is only sent while no session runs, so it cannot mean continue.
async function startDebugging(page) {
  const toolbar = page.locator('.debug-toolbar');
  for (let i = 0; ; i++) {
    await page.keyboard.press('F5');
    try {
      await toolbar.waitFor({ timeout: 20000 });
      return;
    } catch (e) {
      if (i === 3) throw e;
    }
  }
}

module.exports = { ROOT, missing, withVSCode, runCommand, startDebugging };
