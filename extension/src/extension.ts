// The vmdap VS Code extension is thin: it declares the debugger, finds the
// vmdap binary and starts it (or connects to a running one), fills launch
// defaults, and can trace DAP traffic. The adapter does the work.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function activate(context: vscode.ExtensionContext): void {
  channel = vscode.window.createOutputChannel('vmdap', { log: true });
  context.subscriptions.push(
    channel,
    vscode.debug.registerDebugAdapterDescriptorFactory('vmdap', new Factory(context)),
    vscode.debug.registerDebugConfigurationProvider('vmdap', new ConfigProvider()),
    vscode.debug.registerDebugAdapterTrackerFactory('vmdap', new TrackerFactory()),
    vscode.commands.registerCommand('vmdap.toggleHex', toggleHex),
    vscode.debug.onDidTerminateDebugSession((s) => hexSessions.delete(s.id)),
  );
}

// Sessions showing integers in hex; the adapter re-renders the views
// (it sends an invalidated event) when told.
const hexSessions = new Set<string>();

async function toggleHex(): Promise<void> {
  const session = vscode.debug.activeDebugSession;
  if (!session || session.type !== 'vmdap') return;
  const hex = !hexSessions.has(session.id);
  try {
    await session.customRequest('vmdap.hexDisplay', { hex });
    if (hex) hexSessions.add(session.id);
    else hexSessions.delete(session.id);
  } catch (e) {
    void vscode.window.showErrorMessage(`vmdap: ${(e as Error).message}`);
  }
}

export function deactivate(): void {}

// findBinary looks in the vmdap.path setting, then the binary bundled in
// the extension's bin/, then PATH.
export function findBinary(extensionPath: string, setting: string | undefined, envPath: string | undefined): string | undefined {
  if (setting) {
    return fs.existsSync(setting) ? setting : undefined;
  }
  const bundled = path.join(extensionPath, 'bin', 'vmdap');
  if (fs.existsSync(bundled)) {
    return bundled;
  }
  for (const dir of (envPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'vmdap');
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

class Factory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly context: vscode.ExtensionContext) {}

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.ProviderResult<vscode.DebugAdapterDescriptor> {
    const cfg = session.configuration;
    if (typeof cfg.port === 'number') {
      channel?.info(`connecting to a vmdap already listening on 127.0.0.1:${cfg.port}`);
      return new vscode.DebugAdapterServer(cfg.port, '127.0.0.1');
    }
    const setting = vscode.workspace.getConfiguration('vmdap').get<string>('path');
    const bin = findBinary(this.context.extensionPath, setting, process.env.PATH);
    if (!bin) {
      const msg = setting
        ? `vmdap: the binary set in "vmdap.path" (${setting}) does not exist.`
        : 'vmdap: no vmdap binary found: not bundled with the extension and not on PATH. Build it with "go build -o vmdap ." in the vmdap source tree and set "vmdap.path" to it.';
      void vscode.window.showErrorMessage(msg, 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'vmdap.path');
      });
      return undefined;
    }
    // In the workspace folder: the adapter looks for the sources of
    // units compiled in a relative directory (Debian's kernel) from its
    // working directory, as gdb does, so a kernel tree opened as the
    // workspace needs no sourceMap.
    const cwd = session.workspaceFolder?.uri.scheme === 'file' ? session.workspaceFolder.uri.fsPath : undefined;
    channel?.info(`starting ${bin} dap${cwd ? ` in ${cwd}` : ''}`);
    return new vscode.DebugAdapterExecutable(bin, ['dap'], cwd ? { cwd } : undefined);
  }
}

class ConfigProvider implements vscode.DebugConfigurationProvider {
  resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, cfg: vscode.DebugConfiguration): vscode.ProviderResult<vscode.DebugConfiguration> {
    // F5 with no launch.json: debug the active file if it is an ELF.
    if (!cfg.type && !cfg.request && !cfg.name) {
      const file = activeFile();
      const program = file && isELF(file) ? file : undefined;
      if (!program) {
        void vscode.window.showInformationMessage('vmdap: open a guest kernel ELF file, or add a vmdap configuration to launch.json.');
        return undefined;
      }
      return { type: 'vmdap', request: 'launch', name: 'vmdap: Launch guest kernel on KVM', program, vcpus: 1, memory: 128 };
    }
    if (cfg.request === 'launch') {
      cfg.vcpus ??= 1;
      cfg.memory ??= 128;
    }
    return cfg;
  }
}

// activeFile is the file of the active editor tab. An ELF is binary: VS
// Code shows it in its binary placeholder (or a hex editor), which is no
// text editor, so activeTextEditor is undefined for it: the tab knows it.
function activeFile(): string | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom ? input.uri : vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === 'file' ? uri.fsPath : undefined;
}

function isELF(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 0);
    fs.closeSync(fd);
    return b.toString('latin1') === '\x7fELF';
  } catch {
    return false;
  }
}

// TrackerFactory logs each session's adapter errors and exit to the
// vmdap output channel, and with "vmdap.trace" all DAP traffic. The
// channel is a LogOutputChannel, whose level is Info unless the user
// changes it: the traffic is logged at info, where the setting's user
// sees it (at trace level it would be dropped).
class TrackerFactory implements vscode.DebugAdapterTrackerFactory {
  createDebugAdapterTracker(): vscode.ProviderResult<vscode.DebugAdapterTracker> {
    const trace = vscode.workspace.getConfiguration('vmdap').get<boolean>('trace') === true;
    return {
      onWillReceiveMessage: trace ? (m) => channel?.info(`→ ${JSON.stringify(m)}`) : undefined,
      onDidSendMessage: trace ? (m) => channel?.info(`← ${JSON.stringify(m)}`) : undefined,
      onError: (e) => channel?.error(`adapter error: ${e.message}`),
      onExit: (code, signal) => {
        const msg = `adapter exited: code ${code} signal ${signal}`;
        if (code) channel?.warn(msg);
        else channel?.info(msg);
      },
    };
  }
}
