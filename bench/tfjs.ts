// TensorFlow.js as the peer engine, on the same Dawn adapter that shadergan uses.
//
// tfjs-backend-webgpu registers itself at import time only if `navigator.gpu` already exists,
// and Node has no navigator, so one is made from the `webgpu` package before TensorFlow.js is
// imported. Dawn's OpenGL backend offers an adapter only to requests for the 'compatibility'
// feature level, which tfjs does not ask for; on that backend the request is amended.
//
// @tensorflow/tfjs (not tfjs-core alone) is imported because only the full bundle registers
// the gradient functions that the training step needs.
import { globals } from 'webgpu';

import { navigatorGpu, RecurringWaits, type Backend } from '../src/kernels/gpu.ts';

export type Tf = typeof import('@tensorflow/tfjs');
export type TfTensor = import('@tensorflow/tfjs').Tensor;

export type TfBackendName = 'webgpu' | 'wasm' | 'cpu';

export interface TfEngine {
  tf: Tf;
  /** The backends that initialised; a missing one is reported, not fatal. */
  available: Set<TfBackendName>;
  /** Why a backend did not initialise, for the report. */
  failures: Map<TfBackendName, string>;
  wasmThreads: number;
  webgpuAdapter: string;
}

/** The parts of tfjs-backend-webgpu's backend object used to wait for its queue. */
interface WebgpuBackendInternals {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  adapterInfo?: { vendor?: string; architecture?: string; description?: string };
}

/** shadergan's GPU object for `backend`, with tfjs' adapter requests amended on OpenGL. */
function tfjsNavigatorGpu(backend: Exclude<Backend, 'auto'>): GPU {
  const gpu = navigatorGpu(backend);
  if (backend !== 'opengl') return gpu;
  const compatible: Pick<GPU, 'requestAdapter' | 'getPreferredCanvasFormat'> = {
    requestAdapter: (options) => gpu.requestAdapter({ ...options, featureLevel: 'compatibility' }),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
  };
  return compatible as GPU;
}

/** Imports TensorFlow.js with its WebGPU backend on `backend`, plus the wasm and CPU backends. */
export async function loadTensorflow(
  backend: Exclude<Backend, 'auto'>,
  wanted: readonly TfBackendName[],
): Promise<TfEngine> {
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu: tfjsNavigatorGpu(backend) },
    configurable: true,
  });
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // tfjs turns wasm threads off under Node (its worker start-up needs blob URLs), so the wasm
  // backend runs XNNPACK on one thread here; the report says so.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  // Production mode skips tfjs' debug checks (and its console banners): its fastest setting.
  tf.enableProdMode();

  const available = new Set<TfBackendName>();
  const failures = new Map<TfBackendName, string>();
  for (const name of wanted) {
    try {
      if (await tf.setBackend(name)) available.add(name);
      else failures.set(name, 'did not initialise');
    } catch (error) {
      failures.set(name, error instanceof Error ? error.message : String(error));
    }
  }
  let webgpuAdapter = '';
  if (available.has('webgpu')) {
    const info = (tf.findBackend('webgpu') as unknown as WebgpuBackendInternals).adapterInfo;
    webgpuAdapter = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ');
  }
  const wasmThreads = available.has('wasm') ? wasm.getThreadsCount() : 0;
  return { tf, available, failures, wasmThreads, webgpuAdapter };
}

const waits = new RecurringWaits();

/**
 * Returns once the backend has finished all work recorded so far. tfjs-webgpu batches
 * dispatches in an open command encoder, so that is submitted first; the CPU and wasm
 * backends compute synchronously. A recurring wait (`waitKey`) sleeps through most of its
 * expected time exactly as shadergan's Gpu.sync does, so that both engines are timed alike.
 */
export async function finishTfjs(tf: Tf, backend: TfBackendName, waitKey?: string): Promise<void> {
  if (backend !== 'webgpu') return;
  const internals = tf.findBackend('webgpu') as unknown as WebgpuBackendInternals;
  internals.endComputePassEncoder();
  if (internals.commandEncoder) internals.submitQueue();
  await waits.wait(() => internals.device.queue.onSubmittedWorkDone(), waitKey);
}

/** Whether `backend` registers every kernel in `kernels`. */
export function hasKernels(tf: Tf, backend: TfBackendName, kernels: readonly string[]): boolean {
  return kernels.every((name) => tf.getKernel(name, backend) !== undefined);
}
