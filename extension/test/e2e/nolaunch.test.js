// F5 with no launch.json and the guest's ELF open in VS Code: VS Code shows
// a binary file in its binary placeholder, no text editor, and the
// extension must still see it as the active file and launch it.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ROOT, missing, withVSCode } = require('./codeserver');

const KERNEL_DIR = path.join(ROOT, 'examples', 'kernel');
const ART = path.join(ROOT, 'test-artifacts', 'vscode-nolaunch');

function traceOf(data) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'vmdap.log') out.push(fs.readFileSync(p, 'utf8'));
    }
  };
  walk(path.join(data, 'logs'));
  return out.join('');
}

test('F5 with no launch.json launches the ELF open in the editor', { timeout: 240000 }, async (t) => {
  const why = missing([['/dev/kvm', '/dev/kvm']]);
  if (why) {
    t.skip(`missing ${why}`);
    return;
  }
  assert.ok(fs.existsSync(path.join(KERNEL_DIR, 'kernel.elf')), 'make -C examples/kernel first');
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdap-code-'));
  const ws = path.join(state, 'ws'); // a workspace with no .vscode/launch.json
  fs.mkdirSync(ws);
  fs.copyFileSync(path.join(KERNEL_DIR, 'kernel.elf'), path.join(ws, 'kernel.elf'));
  try {
    await withVSCode({ state, folder: ws, art: ART, settings: { 'vmdap.trace': true } }, async (page, { data }) => {
      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'kernel.elf' }).first().click();
      await page.waitForSelector('.tab.active:has-text("kernel.elf")', { timeout: 30000 });
      await page.getByText(/binary or uses an unsupported text encoding/).first().waitFor({ timeout: 30000 });
      // F5 picks a debugger (no launch.json says which); an F5 that lands
      // while the workbench still settles is lost, so press it again.
      const pick = page.locator('.quick-input-list .monaco-list-row', { hasText: 'vmdap' }).first();
      for (let i = 0; ; i++) {
        await page.locator('.editor-group-container').first().click();
        await page.waitForTimeout(1000);
        await page.keyboard.press('F5');
        try {
          await pick.waitFor({ timeout: 10000 });
          break;
        } catch (e) {
          if (i === 3) throw e;
        }
      }
      await pick.click();
      // The guest runs to its end (no breakpoints): the launch is in the trace.
      const program = path.join(ws, 'kernel.elf');
      const deadline = Date.now() + 60000;
      let traced = '';
      while (Date.now() < deadline && !/"event":"terminated"/.test(traced)) {
        await page.waitForTimeout(500);
        traced = traceOf(data);
      }
      assert.ok(traced.includes(`"program":${JSON.stringify(program)}`), 'no launch of the open ELF');
      assert.match(traced, /"event":"exited"/);
    });
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
