// A whole DAP session through Microsoft's DebugClient (the client VS Code's
// own adapters are tested with), driving the real vmdap binary over stdio on
// the example guest. Run: VMDAP_ADAPTER=... VMDAP_EXAMPLE=... node --test
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const ADAPTER = process.env.VMDAP_ADAPTER || path.join(ROOT, 'extension', 'bin', 'vmdap');
const KERNEL = process.env.VMDAP_EXAMPLE || path.join(ROOT, 'examples', 'kernel', 'kernel.elf');
const SRC = path.join(ROOT, 'examples', 'kernel', 'main.c');

function lineOf(marker) {
  const lines = fs.readFileSync(SRC, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, `no line contains ${marker}`);
  return i + 1;
}

async function stoppedAfter(dc, request) {
  const p = dc.waitForEvent('stopped', 20000);
  await request();
  return p;
}

test('a whole session on the example guest over stdio', { timeout: 120000 }, async (t) => {
  if (!fs.existsSync('/dev/kvm')) {
    t.skip('no /dev/kvm');
    return;
  }
  assert.ok(fs.existsSync(ADAPTER), `adapter ${ADAPTER} not built`);
  assert.ok(fs.existsSync(KERNEL), `example ${KERNEL} not built (make -C examples/kernel)`);
  const dc = new DebugClient(ADAPTER, 'dap', 'vmdap', { env: { ...process.env } }, true);
  dc.defaultTimeout = 20000;
  await dc.start();
  try {
    const initialized = dc.waitForEvent('initialized');
    const init = await dc.initializeRequest({ adapterID: 'vmdap', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
    assert.ok(init.body.supportsDataBreakpoints && init.body.supportsDisassembleRequest && init.body.supportsSteppingGranularity);
    await dc.launchRequest({ program: KERNEL, memory: 64 });
    await initialized;

    const call = lineOf('int total = sum_squares(5);');
    const bps = await dc.setBreakpointsRequest({ source: { path: SRC }, breakpoints: [{ line: call }] });
    assert.strictEqual(bps.body.breakpoints[0].verified, true);
    assert.strictEqual(bps.body.breakpoints[0].line, call);

    let ev = await stoppedAfter(dc, () => dc.configurationDoneRequest());
    assert.strictEqual(ev.body.reason, 'breakpoint');
    let st = await dc.stackTraceRequest({ threadId: 1 });
    assert.strictEqual(st.body.stackFrames[0].name, 'kmain');
    assert.strictEqual(st.body.stackFrames[0].line, call);
    assert.match(st.body.stackFrames[0].instructionPointerReference, /^0x/);

    const scopes = await dc.scopesRequest({ frameId: st.body.stackFrames[0].id });
    const names = scopes.body.scopes.map((s) => s.name);
    assert.deepStrictEqual(names, ['Locals', 'Arguments', 'Globals', 'Registers']);
    const locals = await dc.variablesRequest({ variablesReference: scopes.body.scopes[0].variablesReference });
    assert.ok(locals.body.variables.some((v) => v.name === 'total'));

    // step in, next, step out
    ev = await stoppedAfter(dc, () => dc.stepInRequest({ threadId: 1 }));
    assert.strictEqual(ev.body.reason, 'step');
    st = await dc.stackTraceRequest({ threadId: 1 });
    assert.strictEqual(st.body.stackFrames[0].name, 'sum_squares');
    assert.strictEqual(st.body.stackFrames[0].line, lineOf('int total = 0;'));
    ev = await stoppedAfter(dc, () => dc.nextRequest({ threadId: 1 }));
    st = await dc.stackTraceRequest({ threadId: 1 });
    assert.strictEqual(st.body.stackFrames[0].line, lineOf('for (int i = 0; i < n; i++)'));
    ev = await stoppedAfter(dc, () => dc.stepOutRequest({ threadId: 1 }));
    st = await dc.stackTraceRequest({ threadId: 1 });
    assert.strictEqual(st.body.stackFrames[0].name, 'kmain');

    // a data breakpoint on the global counter (read: it is read next)
    const frameId = st.body.stackFrames[0].id;
    const info = await dc.customRequest('dataBreakpointInfo', { name: 'counter', frameId });
    assert.strictEqual(typeof info.body.dataId, 'string');
    const access = info.body.accessTypes.includes('read') ? 'read' : 'readWrite';
    const dbp = await dc.customRequest('setDataBreakpoints', { breakpoints: [{ dataId: info.body.dataId, accessType: access }] });
    assert.strictEqual(dbp.body.breakpoints[0].verified, true);
    ev = await stoppedAfter(dc, () => dc.continueRequest({ threadId: 1 }));
    assert.strictEqual(ev.body.reason, 'data breakpoint');
    assert.match(ev.body.description, /counter/);
    await dc.customRequest('setDataBreakpoints', { breakpoints: [] });

    // disassembly and memory
    st = await dc.stackTraceRequest({ threadId: 1 });
    const pc = st.body.stackFrames[0].instructionPointerReference;
    const dis = await dc.customRequest('disassemble', { memoryReference: pc, instructionOffset: -4, instructionCount: 10, resolveSymbols: true });
    assert.strictEqual(dis.body.instructions.length, 10);
    assert.strictEqual(dis.body.instructions[4].address, pc);
    const addr = await dc.evaluateRequest({ expression: '&counter', frameId: st.body.stackFrames[0].id });
    const mem = await dc.customRequest('readMemory', { memoryReference: addr.body.memoryReference, count: 8 });
    assert.strictEqual(Buffer.from(mem.body.data, 'base64').readUInt32LE(0), 5);

    // run to the end: output, exit status
    const exited = dc.waitForEvent('exited', 30000);
    const terminated = dc.waitForEvent('terminated', 30000);
    await dc.continueRequest({ threadId: 1 });
    const ex = await exited;
    assert.strictEqual(ex.body.exitCode, 1);
    await terminated;
    await dc.disconnectRequest({});
  } finally {
    await dc.stopAdapter();
  }
});
