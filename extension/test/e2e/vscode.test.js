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
const path = require('path');
const { ROOT, missing, withVSCode, startDebugging } = require('./codeserver');

const WS = path.join(ROOT, 'examples');
const SRC = path.join(WS, 'kernel', 'main.c');
const ART = path.join(ROOT, 'test-artifacts', 'vscode');

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
  const why = missing([['/dev/kvm', '/dev/kvm']]);
  if (why) {
    t.skip(`missing ${why}`);
    return;
  }
  assert.ok(fs.existsSync(path.join(WS, 'kernel', 'kernel.elf')), 'make -C examples/kernel first');
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdap-code-'));
  try {
    await withVSCode({ state, folder: WS, art: ART, settings: { 'vmdap.trace': true } }, async (page, { data }) => {
      // Open kernel/main.c through Quick Open.
      await page.keyboard.press('Control+P');
      await page.waitForSelector('.quick-input-widget input:focus', { timeout: 10000 }); // typed before it has focus, letters are lost
      await page.keyboard.type('kernel/main.c');
      const result = page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.c' }).first();
      await result.waitFor({ timeout: 30000 });
      await result.click();
      await page.waitForSelector('.monaco-editor .view-lines', { timeout: 30000 });
      await page.waitForSelector('.tab.active:has-text("main.c")', { timeout: 30000 });
      const bpLine = lineOf('int total = sum_squares(5);');
      await page.click('.monaco-editor .view-lines');
      await page.keyboard.press('Control+G');
      await page.waitForSelector('.quick-input-widget input:focus', { timeout: 10000 }); // typed before it has focus, letters are lost
      await page.keyboard.type(String(bpLine));
      await page.keyboard.press('Enter');
      await page.waitForTimeout(500); // F9 right after the go-to-line box closes is lost
      await page.keyboard.press('F9');
      await page.waitForSelector('.codicon-debug-breakpoint', { timeout: 15000 });
      await startDebugging(page);
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
    });
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
