// A compute kernel is a WGSL entry point plus what is derived from it by reflection: the bind
// group layout, the uniform parameter struct and the workgroup size. Pipelines, uniform buffers
// and bind groups are cached, so a repeated dispatch with the same shapes and buffers creates
// no WebGPU object at all.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { ResourceType, WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { FunctionInfo, MemberInfo, VariableInfo } from 'wgsl_reflect/wgsl_reflect.module.js';

import { GpuError } from '../errors.ts';
import { debugSwitch, type Gpu, type PooledBuffer } from './gpu.ts';

const CACHE_LIMIT = 4096;
const SHADER_DIR = fileURLToPath(new URL('../../shaders/', import.meta.url));
const debugDispatches = debugSwitch('kernels');
const printWgsl = debugSwitch('wgsl');

interface ParamField {
  name: string;
  offset: number;
  kind: 'u32' | 'i32' | 'f32';
}

interface Resource {
  name: string;
  binding: number;
  /** 'params': the uniform struct filled from Dispatch.params; 'uniform': bound from a buffer. */
  kind: 'params' | 'uniform' | 'storage' | 'read-only-storage';
}

interface ShaderFile {
  module: GPUShaderModule;
  reflection: WgslReflect;
}

/** Uniform parameters by field name; every field of the shader's params struct is required. */
export type Params = Record<string, number>;

/** A byte range of a pooled buffer, for a binding that must not span the whole buffer. */
export interface BufferSlice {
  pooled: PooledBuffer;
  offset: number;
  size: number;
}

export interface Dispatch {
  /** Storage buffers (and array-typed uniform buffers) by the name of the WGSL variable. */
  buffers: Record<string, PooledBuffer | BufferSlice>;
  params?: Params;
  workgroups: readonly [number, number?, number?];
  /** Names the op and shapes in debug output and in error messages. */
  label: string;
}

const shaderFiles = new WeakMap<Gpu, Map<string, ShaderFile>>();

function loadShaderFile(gpu: Gpu, file: string): ShaderFile {
  let files = shaderFiles.get(gpu);
  if (!files) shaderFiles.set(gpu, (files = new Map()));
  const cached = files.get(file);
  if (cached) return cached;

  const code = readFileSync(SHADER_DIR + file, 'utf8');
  if (printWgsl) process.stderr.write(`// ---- shaders/${file}\n${code}\n`);
  const module = gpu.device.createShaderModule({ code, label: file });
  const loaded = { module, reflection: new WgslReflect(code) };
  files.set(file, loaded);
  return loaded;
}

function scalarKind(member: MemberInfo, where: string): ParamField['kind'] {
  const name = member.type.name;
  if (name === 'u32' || name === 'i32' || name === 'f32') return name;
  throw new GpuError(`${where}: parameter '${member.name}' has type ${name}; use u32, i32 or f32`);
}

/** The params block is the uniform struct; a uniform array is data bound from a buffer. */
function isParamsStruct(variable: VariableInfo): boolean {
  return variable.resourceType === ResourceType.Uniform && (variable.members?.length ?? 0) > 0;
}

export class Kernel {
  readonly workgroupSize: readonly [number, number, number];
  private readonly pipeline: GPUComputePipeline;
  private readonly layout: GPUBindGroupLayout;
  private readonly resources: Resource[];
  private readonly paramsResource: Resource | null;
  private readonly paramFields: ParamField[];
  private readonly paramsSize: number;
  private readonly uniforms = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly name: string;

  constructor(
    private readonly gpu: Gpu,
    file: string,
    entryPoint: string,
    constants: Record<string, number> = {},
  ) {
    this.name = `${file}:${entryPoint}`;
    const shader = loadShaderFile(gpu, file);
    const entry: FunctionInfo | undefined = shader.reflection.entry.compute.find(
      (candidate) => candidate.name === entryPoint,
    );
    if (!entry) throw new GpuError(`shaders/${file} has no compute entry point '${entryPoint}'`);

    this.resources = entry.resources.map((variable) => this.describe(variable));
    this.paramsResource = this.resources.find((resource) => resource.kind === 'params') ?? null;
    const paramsVariable = entry.resources.find((v) => isParamsStruct(v));
    this.paramFields = (paramsVariable?.members ?? []).map((member) => ({
      name: member.name,
      offset: member.offset,
      kind: scalarKind(member, this.name),
    }));
    this.paramsSize = Math.ceil((paramsVariable?.size ?? 0) / 16) * 16;

    const size = entry.workgroupSize ?? [1, 1, 1];
    this.workgroupSize = [
      constants.WORKGROUP_SIZE ?? Number(size[0]),
      Number(size[1] ?? 1),
      Number(size[2] ?? 1),
    ];

    this.layout = gpu.device.createBindGroupLayout({
      label: this.name,
      entries: this.resources.map((resource) => ({
        binding: resource.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: resource.kind === 'params' ? 'uniform' : resource.kind },
      })),
    });
    this.pipeline = gpu.device.createComputePipeline({
      label: this.name,
      layout: gpu.device.createPipelineLayout({ bindGroupLayouts: [this.layout] }),
      compute: { module: shader.module, entryPoint, constants },
    });
  }

  private describe(variable: VariableInfo): Resource {
    if (variable.group !== 0) {
      throw new GpuError(`${this.name}: only @group(0) is supported ('${variable.name}')`);
    }
    if (variable.resourceType === ResourceType.Uniform) {
      const kind = isParamsStruct(variable) ? 'params' : 'uniform';
      return { name: variable.name, binding: variable.binding, kind };
    }
    if (variable.resourceType === ResourceType.Storage) {
      const kind = variable.access === 'read' ? 'read-only-storage' : 'storage';
      return { name: variable.name, binding: variable.binding, kind };
    }
    throw new GpuError(`${this.name}: resource '${variable.name}' is not a buffer`);
  }

  /** Records one dispatch into the current compute pass. */
  dispatch(call: Dispatch): void {
    const [x, y = 1, z = 1] = call.workgroups;
    const maxPerDimension = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxPerDimension || y > maxPerDimension || z > maxPerDimension) {
      throw new GpuError(`${call.label}: ${x}x${y}x${z} workgroups exceed the device limit`);
    }
    if (x === 0 || y === 0 || z === 0) return;

    const bindGroup = this.bindGroup(call);
    const pass = this.gpu.computePass(this.name, call.label);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (debugDispatches && !this.gpu.profiler) {
      process.stderr.write(`[shadergan] ${this.name} ${call.label} grid ${x}x${y}x${z}\n`);
    }
  }

  private bindGroup(call: Dispatch): GPUBindGroup {
    const uniformKey = this.paramsResource ? this.packedKey(call) : '';
    let key = uniformKey;
    for (const resource of this.resources) {
      if (resource.kind === 'params') continue;
      const given = call.buffers[resource.name];
      if (!given) throw new GpuError(`${call.label}: buffer '${resource.name}' not given`);
      key +=
        'pooled' in given ? `|${given.pooled.id}@${given.offset}+${given.size}` : `|${given.id}`;
    }
    const cached = this.bindGroups.get(key);
    if (cached) return cached;

    const entries: GPUBindGroupEntry[] = this.resources.map((resource) => {
      if (resource.kind === 'params') {
        const buffer = this.uniformBuffer(uniformKey, call);
        return { binding: resource.binding, resource: { buffer } };
      }
      const given = call.buffers[resource.name];
      const binding: GPUBufferBinding =
        'pooled' in given
          ? { buffer: given.pooled.buffer, offset: given.offset, size: given.size }
          : { buffer: given.buffer };
      return { binding: resource.binding, resource: binding };
    });
    const bindGroup = this.gpu.device.createBindGroup({
      label: `${this.name} ${call.label}`,
      layout: this.layout,
      entries,
    });
    // Buffers come from a pool, so the same few combinations recur every step; the bound is a
    // guard against programs that pass new parameter values on every call, not a tuning knob.
    if (this.bindGroups.size > CACHE_LIMIT) this.bindGroups.clear();
    this.bindGroups.set(key, bindGroup);
    return bindGroup;
  }

  private packedKey(call: Dispatch): string {
    const params = call.params ?? {};
    for (const name of Object.keys(params)) {
      if (!this.paramFields.some((field) => field.name === name)) {
        throw new GpuError(`${call.label}: ${this.name} has no parameter '${name}'`);
      }
    }
    return this.paramFields
      .map((field) => {
        const value = params[field.name];
        if (value === undefined || !Number.isFinite(value)) {
          throw new GpuError(`${call.label}: parameter '${field.name}' missing or not finite`);
        }
        return `${field.kind}${value}`;
      })
      .join(',');
  }

  private uniformBuffer(key: string, call: Dispatch): GPUBuffer {
    const cached = this.uniforms.get(key);
    if (cached) return cached;
    if (this.uniforms.size > CACHE_LIMIT) {
      // Recorded work and cached bind groups may still use these buffers: submit the one,
      // drop the other, then free them.
      this.gpu.flush();
      this.bindGroups.clear();
      for (const buffer of this.uniforms.values()) buffer.destroy();
      this.uniforms.clear();
    }

    const buffer = this.gpu.device.createBuffer({
      size: Math.max(16, this.paramsSize),
      usage: GPUBufferUsage.UNIFORM,
      mappedAtCreation: true,
      label: `${this.name} params`,
    });
    const view = new DataView(buffer.getMappedRange());
    const params = call.params ?? {};
    for (const field of this.paramFields) {
      const value = params[field.name];
      if (field.kind === 'f32') view.setFloat32(field.offset, value, true);
      else if (field.kind === 'i32') view.setInt32(field.offset, value, true);
      else view.setUint32(field.offset, value, true);
    }
    buffer.unmap();
    this.uniforms.set(key, buffer);
    return buffer;
  }
}

/** Caches kernels per device by file, entry point and override constants. */
const kernels = new WeakMap<Gpu, Map<string, Kernel>>();

export function kernel(
  gpu: Gpu,
  file: string,
  entryPoint: string,
  constants: Record<string, number> = {},
): Kernel {
  let cache = kernels.get(gpu);
  if (!cache) kernels.set(gpu, (cache = new Map()));
  const key = `${file}:${entryPoint}:${JSON.stringify(constants)}`;
  let found = cache.get(key);
  if (!found) cache.set(key, (found = new Kernel(gpu, file, entryPoint, constants)));
  return found;
}

/**
 * Workgroup counts for `count` invocations in 1-D: x grows up to the device limit, then y.
 * Shaders rebuild the flat index as `id.x + id.y * num_workgroups.x * WORKGROUP_SIZE`.
 */
export function grid1d(count: number, workgroupSize: number): [number, number] {
  const groups = Math.ceil(count / workgroupSize);
  const maxX = 65535;
  if (groups <= maxX) return [groups, 1];
  return [maxX, Math.ceil(groups / maxX)];
}
