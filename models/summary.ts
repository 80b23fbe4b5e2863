// Per-module parameter counts of a model tree (what `cellseg model-summary` prints).
import type { Module } from '../engine/nn/module';

export interface SummaryRow {
  module: string;
  parameters: number;
  buffers: number;
}

const count = (ts: [string, { numel: number }][]) => ts.reduce((s, [, t]) => s + t.numel, 0);

/** Rows for the module paths given (e.g. 'backbone.bottom_up'), plus 'total'. */
export function summarize(root: Module, paths: string[]): SummaryRow[] {
  const modules = new Map(root.namedModules());
  const rows = paths.map((p) => {
    const m = modules.get(p);
    if (!m) return { module: p, parameters: 0, buffers: 0 };
    return { module: p, parameters: count(m.namedParameters()), buffers: count(m.namedBuffers()) };
  });
  rows.push({ module: 'total', parameters: count(root.namedParameters()), buffers: count(root.namedBuffers()) });
  return rows;
}

/** The FPN's own parameters are the backbone's minus bottom_up's. */
export function centerMaskSummary(root: Module): SummaryRow[] {
  const rows = summarize(root, ['backbone.bottom_up', 'backbone', 'proposal_generator', 'roi_heads.mask_head', 'roi_heads.maskiou_head']);
  const bu = rows[0]!;
  const bb = rows[1]!;
  rows[1] = { module: 'backbone (FPN: laterals, outputs, p6, p7)', parameters: bb.parameters - bu.parameters, buffers: bb.buffers - bu.buffers };
  return rows;
}

export function formatSummary(rows: SummaryRow[]): string {
  const w = Math.max(...rows.map((r) => r.module.length));
  const fmt = (n: number) => n.toLocaleString('en-US');
  return rows.map((r) => `${r.module.padEnd(w)}  ${fmt(r.parameters).padStart(12)}${r.buffers ? `  (+${fmt(r.buffers)} buffer values)` : ''}`).join('\n');
}
