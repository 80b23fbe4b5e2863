// The CLI's top-level error report: expected errors one line, bugs one line plus "this is a bug",
// stacks only with --verbose, control characters escaped.
import { describe, expect, it } from 'vitest';
import { GpuUnavailableError } from '../../../runtime/device';
import { InputError, UserError, WriteError } from '../../../runtime/errors';
import { BUG_EXIT_CODE, reportError } from '../../../pipeline/cli/report-error';

function report(err: unknown, verbose = false) {
  const lines: string[] = [];
  const code = reportError(err, { verbose, print: (l) => lines.push(...l.split('\n')) });
  return { code, lines };
}

describe('reportError', () => {
  it('prints expected errors as one line with their exit codes', () => {
    expect(report(new InputError('a.csv', 'line 3', 'bad'))).toEqual({ code: 2, lines: ['cellseg: a.csv: line 3: bad'] });
    expect(report(new UserError('no'))).toEqual({ code: 1, lines: ['cellseg: no'] });
    expect(report(new WriteError('/x/y', 'read-only file system (EROFS)'))).toEqual({ code: 1, lines: ['cellseg: /x/y: could not write: read-only file system (EROFS)'] });
    expect(report(new GpuUnavailableError('No WebGPU adapter')).code).toBe(3);
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'q.json'"), { code: 'ENOENT', path: 'q.json', syscall: 'open' });
    expect(report(enoent)).toEqual({ code: 1, lines: ['cellseg: q.json: no such file or directory (open)'] });
  });

  it('reports anything else as a bug in one line, the stack only with --verbose', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    const quiet = report(bug);
    expect(quiet.code).toBe(BUG_EXIT_CODE);
    expect(quiet.lines).toHaveLength(1);
    expect(quiet.lines[0]).toMatch(/^cellseg: internal error: TypeError: Cannot read properties .* this is a bug, please report it \(run again with --verbose/);
    const loud = report(bug, true);
    expect(loud.lines.length).toBeGreaterThan(1);
    expect(loud.lines.some((l) => /^\s+at /.test(l))).toBe(true);
    expect(report('a string thrown').lines).toHaveLength(1);
  });

  it('escapes NUL and control characters and cuts very long messages', () => {
    const r = report(new InputError('f\u0000.csv', undefined, 'id "a\u0000\u001b[31m"'));
    expect(r.lines).toEqual(['cellseg: f\\0.csv: id "a\\0\\x1b[31m"']);
    const long = report(new UserError('x'.repeat(10_000)));
    expect(long.lines[0]!.length).toBeLessThan(4100);
  });
});
