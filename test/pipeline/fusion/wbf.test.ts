import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { weightedBoxesFusion, type ConfType } from '../../../pipeline/fusion/wbf';

interface Case {
  name: string;
  boxes: number[][][];
  scores: number[][];
  labels: number[][];
  weights?: number[];
  iou_thr: number;
  skip_box_thr: number;
  conf_type: ConfType;
  allows_overflow?: boolean;
  expected: { boxes: number[][]; scores: number[]; labels: number[] };
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/wbf-reference.json', import.meta.url), 'utf8')) as { cases: Case[] };

const README = fixture.cases.find((c) => c.name === 'readme-avg-False')!;
const run = (confType: ConfType, allowsOverflow = false) =>
  weightedBoxesFusion(README.boxes, README.scores, README.labels, {
    weights: [2, 1],
    iouThr: 0.5,
    skipBoxThr: 0.0001,
    confType,
    allowsOverflow,
  });

describe('weighted boxes fusion', () => {
  it('fuses the simple two-model example by hand: box (0.108,0.1,0.508,0.5) conf 0.75, lone box 0.40', () => {
    const res = weightedBoxesFusion(
      [[[0.1, 0.1, 0.5, 0.5]], [[0.12, 0.1, 0.52, 0.5], [0.7, 0.7, 0.9, 0.9]]],
      [[0.9], [0.6, 0.8]],
      [[0], [0, 0]],
      { iouThr: 0.55 },
    );
    expect(res.scores[0]).toBeCloseTo(0.75, 6);
    expect(res.boxes[0]![0]).toBeCloseTo(0.108, 6);
    expect(res.boxes[0]![2]).toBeCloseTo(0.508, 6);
    expect(res.scores[1]).toBeCloseTo(0.4, 12);
    expect(res.members[0]!.map((m) => [m.model, m.index])).toEqual([[0, 0], [1, 0]]);
  });

  it('avg: README data gives 0.8, 0.733333 (=(1.8+0.4)/2*2/3), then single boxes w*s/3', () => {
    const res = run('avg');
    expect(res.scores.map((s) => +s.toFixed(6))).toEqual([0.8, 0.733333, 0.466667, 0.266667, 0.233333, 0.166667, 0.1]);
    expect(res.labels).toEqual([1, 0, 1, 1, 1, 1, 0]);
    expect(res.boxes[1]!.map((v) => +v.toFixed(6))).toEqual([0.001818, 0.475455, 0.813636, 0.913636]);
  });

  it('max: the best member score over max(weights)', () => {
    expect(run('max').scores.map((s) => +s.toFixed(6))).toEqual([0.9, 0.8, 0.7, 0.4, 0.35, 0.25, 0.15]);
  });

  it('box_and_model_avg: label-0 cluster (two boxes of model 0) scores 1.1*2/4 * 2/3 = 0.366667', () => {
    const res = run('box_and_model_avg');
    const i = res.labels.findIndex((l, k) => l === 0 && res.members[k]!.length === 2);
    expect(res.scores[i]).toBeCloseTo(0.366667, 6);
  });

  it('absent_model_aware_avg: label-0 cluster scores 1.1*2/(4+1) = 0.44', () => {
    const res = run('absent_model_aware_avg');
    const i = res.labels.findIndex((l, k) => l === 0 && res.members[k]!.length === 2);
    expect(res.scores[i]).toBeCloseTo(0.44, 6);
  });

  it('allows_overflow scales by the cluster size instead of min(models, size)', () => {
    const three = weightedBoxesFusion([[[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]], [[0.9, 0.9, 0.9]], [[0, 0, 0]], {
      allowsOverflow: true,
    });
    expect(three.scores[0]).toBeCloseTo(2.7, 6);
    const capped = weightedBoxesFusion([[[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]], [[0.9, 0.9, 0.9]], [[0, 0, 0]]);
    expect(capped.scores[0]).toBeCloseTo(0.9, 6);
  });

  it('returns empty arrays when every box is skipped', () => {
    const res = weightedBoxesFusion([[[0.1, 0.1, 0.2, 0.2]]], [[0.01]], [[0]], { skipBoxThr: 0.5 });
    expect(res).toEqual({ boxes: [], scores: [], labels: [], members: [] });
  });

  it('rejects an unknown conf_type and mismatched lengths', () => {
    expect(() => weightedBoxesFusion([[]], [[]], [[]], { confType: 'mean' as ConfType })).toThrow(/unknown conf_type "mean"/);
    expect(() => weightedBoxesFusion([[[0, 0, 1, 1]]], [[]], [[0]])).toThrow(/1 boxes but 0 scores/);
  });

  it.each(fixture.cases.map((c) => [c.name, c] as const))('matches ensemble_boxes bit for bit: %s', (_name, c) => {
    const res = weightedBoxesFusion(c.boxes, c.scores, c.labels, {
      weights: c.weights,
      iouThr: c.iou_thr,
      skipBoxThr: c.skip_box_thr,
      confType: c.conf_type,
      allowsOverflow: c.allows_overflow,
    });
    // Equal scores come out in a CPU-dependent order upstream (numpy's SIMD argsort is not
    // stable), so entries are compared after ordering ties canonically; every value is exact.
    const canon = (r: { boxes: number[][]; scores: number[]; labels: number[] }) =>
      r.scores
        .map((s, i) => ({ s, l: r.labels[i]!, b: r.boxes[i]! }))
        .sort((a, b) => b.s - a.s || a.l - b.l || a.b.join() .localeCompare(b.b.join()));
    expect(res.scores).toEqual(c.expected.scores);
    expect(canon(res)).toEqual(canon(c.expected));
  });
});
