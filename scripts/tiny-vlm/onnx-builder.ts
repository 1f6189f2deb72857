/**
 * A small ONNX graph builder over the onnx.proto schema (onnx-proto package), enough to write
 * real transformer graphs with random weights: named nodes, float/int64 initializers,
 * symbolic input/output shapes. Deterministic: the same calls give the same bytes.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// onnx-proto ships CommonJS generated from onnx.proto.

const { onnx } = require('onnx-proto') as typeof import('onnx-proto');

export const FLOAT = 1;
export const UINT8 = 2;
export const INT8 = 3;
export const INT64 = 7;
export const BOOL = 9;

export type Dim = number | string;
type Attr = number | number[] | string | { floats: number[] } | { f: number };

export class GraphBuilder {
  private nodes: import('onnx-proto').onnx.INodeProto[] = [];
  private inits: import('onnx-proto').onnx.ITensorProto[] = [];
  private inputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  private outputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  /** A fresh intermediate name. */
  tmp(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, elemType: number, shape: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, elemType: number, shape: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, shape));
  }

  floatInit(name: string, dims: number[], data: Float32Array): string {
    this.inits.push({
      name,
      dataType: FLOAT,
      dims,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** An initializer of any element type from its raw little-endian bytes. */
  rawInit(name: string, dataType: number, dims: number[], rawData: Uint8Array): string {
    this.inits.push({ name, dataType, dims, rawData });
    return name;
  }

  int64Init(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.inits.push({ name, dataType: INT64, dims, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /** Scalar float constant as an initializer. */
  scalar(value: number): string {
    return this.floatInit(this.tmp('c'), [], Float32Array.of(value));
  }

  ints(values: number[]): string {
    return this.int64Init(this.tmp('i'), values);
  }

  /** Add one node; returns its first output name (or the names given). */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs?: string[]): string {
    const outs = outputs ?? [this.tmp(opType.toLowerCase())];
    const attribute = Object.entries(attrs).map(([name, v]) => attributeOf(name, v));
    this.nodes.push({ opType, input: inputs, output: outs, name: this.tmp(`n_${opType}`), attribute });
    return outs[0]!;
  }

  encode(opset = 17): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'glimpse-make-tiny-vlm',
      opsetImport: [{ domain: '', version: opset }],
      graph: { name: this.name, node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elemType: number, shape: Dim[]): import('onnx-proto').onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeOf(name: string, v: Attr): import('onnx-proto').onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.FLOAT, f: v.f };
}

/** Deterministic PRNG (mulberry32) so the fixture's bytes never change between runs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Weights drawn uniformly in [-scale, scale]. */
export function randomWeights(rand: () => number, size: number, scale: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}
