import CCUDA
import Foundation
import QLoRACore

/// One GPU as the CUDA backend uses it: the driver, the device's primary context, one compute stream (every op, in
/// order: results never depend on timing) and a copy stream, the kernels compiled for this GPU and loaded, and
/// cuBLASLt with a fixed workspace and one algorithm per GEMM shape (chosen once, then reused: the same shapes always
/// run the same algorithm, so a run resumed on the same GPU repeats its bits).
///
/// A CUDA error inside an op is not recoverable (the stream's state is unknown): it stops the process with the call
/// and CUDA's error name. Setting up (`init`) throws instead, so `Backends.make` can say why CUDA cannot run.
public final class CUDAContext: @unchecked Sendable {
    public let driver: CUDADriver
    public let deviceIndex: Int
    public let deviceInfo: CUDADriver.Device
    /// "sm_90" for an H100.
    public let architecture: String
    let context: qlora_CUcontext
    let stream: qlora_CUstream
    let copyStream: qlora_CUstream
    private let functions: [String: qlora_CUfunction]
    let lt: CuBLASLtLibrary
    let ltHandle: qlora_cublasLtHandle
    let workspace: qlora_CUdeviceptr
    let workspaceBytes = 32 << 20
    private let lock = NSLock()
    private var algorithms: [String: qlora_cublasLtMatmulAlgo] = [:]
    private var counter = DeviceMemoryCounter()
    private var cache = DeviceBlockCache()

    /// Opens GPU `device`, compiles (or takes from the cache) every kernel family for its architecture and loads them.
    public init(device: Int = 0, search: CUDALibrarySearch = .standard(), cacheDirectory: URL? = NVRTCCompiler.defaultCacheDirectory()) throws {
        let driver = try CUDADriver.open(search)
        self.driver = driver
        let devices = try driver.devices()
        guard device < devices.count else { throw CUDAError("GPU \(device) requested, the driver sees \(devices.count)") }
        deviceIndex = device
        deviceInfo = devices[device]
        let architecture = "sm_" + devices[device].computeCapability.replacingOccurrences(of: ".", with: "")
        self.architecture = architecture
        var dev: qlora_CUdevice = 0
        try driver.check(driver.api.cuDeviceGet(&dev, Int32(device)), "cuDeviceGet(\(device))")
        var ctx: qlora_CUcontext?
        try driver.check(driver.api.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain(\(device))")
        context = ctx!
        try driver.check(driver.api.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var s: qlora_CUstream?, c: qlora_CUstream?
        try driver.check(driver.api.cuStreamCreate(&s, 1), "cuStreamCreate")   // CU_STREAM_NON_BLOCKING
        try driver.check(driver.api.cuStreamCreate(&c, 1), "cuStreamCreate")
        stream = s!
        copyStream = c!

        let compiler = NVRTCCompiler(nvrtc: try NVRTCLibrary.open(search), cacheDirectory: cacheDirectory)
        var functions: [String: qlora_CUfunction] = [:]
        for family in CUDAKernelFamily.allCases {
            let compiled = try compiler.compile(family, architecture: architecture)
            var module: qlora_CUmodule?
            try compiled.image.withUnsafeBytes { b in
                try driver.check(driver.api.cuModuleLoadData(&module, b.baseAddress!), "cuModuleLoadData(\(family.fileName), \(architecture))")
            }
            for name in family.kernelNames {
                var f: qlora_CUfunction?
                try driver.check(driver.api.cuModuleGetFunction(&f, module, name), "cuModuleGetFunction(\(name))")
                functions[name] = f!
            }
        }
        self.functions = functions

        let lt = try CuBLASLtLibrary.open(search)
        self.lt = lt
        var handle: qlora_cublasLtHandle?
        let status = lt.api.cublasLtCreate(&handle)
        guard status == 0, let handle else { throw CUDAError("cublasLtCreate: cuBLAS status \(status)") }
        ltHandle = handle
        var ws: qlora_CUdeviceptr = 0
        let workspaceBytes = self.workspaceBytes
        try driver.check(driver.api.cuMemAlloc(&ws, workspaceBytes), "cuMemAlloc_v2(cuBLASLt workspace, \(workspaceBytes) bytes)")
        workspace = ws
        counter.allocated(workspaceBytes)
    }

    /// Makes this GPU's context current on the calling thread (ops may come from any thread).
    func makeCurrent() { must(driver.api.cuCtxSetCurrent(context), "cuCtxSetCurrent") }

    /// Stops the process on a CUDA error inside an op (see the type's comment).
    func must(_ result: qlora_CUresult, _ call: @autoclosure () -> String) {
        do { try driver.check(result, call()) } catch { fatalError("CUDA backend: \(error)") }
    }

    // MARK: Memory

    /// Bytes held by allocations (the cuBLASLt workspace included) now and at most; see `DeviceMemoryReporting`.
    var memory: DeviceMemoryCounter {
        lock.lock()
        defer { lock.unlock() }
        return counter
    }

    func resetMemoryPeak() {
        lock.lock()
        counter.resetPeak()
        lock.unlock()
    }

    /// A device block of at least `bytes`: a cached one of its size class (`DeviceBlockCache`), else a new `cuMemAlloc`.
    /// When the device is out of memory, the cache is handed back to the driver and the allocation tried once more.
    /// Reusing a block freed earlier is safe without events because every op runs on the one compute stream, in
    /// order (the paged optimizer's copies use blocks it keeps for itself).
    func allocate(bytes: Int) -> qlora_CUdeviceptr {
        let size = DeviceBlockCache.sizeClass(bytes)
        lock.lock()
        let cached = cache.take(size)
        counter.allocated(size)
        lock.unlock()
        if let cached { return cached }
        makeCurrent()
        var p: qlora_CUdeviceptr = 0
        var status = driver.api.cuMemAlloc(&p, size)
        if status == 2 {   // CUDA_ERROR_OUT_OF_MEMORY
            releaseCache()
            status = driver.api.cuMemAlloc(&p, size)
        }
        must(status, "cuMemAlloc_v2(\(size) bytes; \(memory.inUse) held by qlora)")
        return p
    }

    /// Returns a block from `allocate(bytes:)` to the cache.
    func free(_ p: qlora_CUdeviceptr, bytes: Int) {
        let size = DeviceBlockCache.sizeClass(bytes)
        lock.lock()
        cache.put(p, size: size)
        counter.freed(size)
        lock.unlock()
    }

    /// Hands every cached block back to the driver (after the stream has finished with them).
    func releaseCache() {
        synchronize()
        let blocks = lock.withLock { cache.drain() }
        for p in blocks { must(driver.api.cuMemFree(p), "cuMemFree_v2") }
    }

    /// Zeroes `bytes` at `p`, on the compute stream.
    func zero(_ p: qlora_CUdeviceptr, bytes: Int) {
        guard bytes > 0 else { return }
        makeCurrent()
        must(driver.api.cuMemsetD8Async(p, 0, bytes, stream), "cuMemsetD8Async")
    }

    /// `count` fp32 values at `src` rounded to bf16 at `dst` (nearest even, qlora_math.h), on the compute stream.
    func castToBF16(_ src: qlora_CUdeviceptr, into dst: qlora_CUdeviceptr, count: Int) {
        launch("ql_cast_f32_bf16", grid: CUDAContext.gridFor(count), block: 256, [.pointer(src), .pointer(dst), .i64(count)])
    }

    func upload(_ bytes: UnsafeRawBufferPointer, to p: qlora_CUdeviceptr) {
        guard bytes.count > 0 else { return }
        must(driver.api.cuMemcpyHtoDAsync(p, bytes.baseAddress!, bytes.count, stream), "cuMemcpyHtoDAsync_v2(\(bytes.count) bytes)")
    }

    func download(_ p: qlora_CUdeviceptr, into bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count > 0 else { return }
        must(driver.api.cuMemcpyDtoHAsync(bytes.baseAddress!, p, bytes.count, stream), "cuMemcpyDtoHAsync_v2(\(bytes.count) bytes)")
        synchronize()
    }

    func synchronize() {
        makeCurrent()
        must(driver.api.cuStreamSynchronize(stream), "cuStreamSynchronize")
    }

    // MARK: Kernels

    /// A kernel argument, passed by value.
    enum Argument {
        case pointer(qlora_CUdeviceptr)
        case i64(Int)
        case i32(Int32)
        case u32(UInt32)
        case u64(UInt64)
        case f32(Float)
        case bytes([UInt8])
    }

    /// Launches `name` on the compute stream with `grid` × `block` threads (1-D).
    func launch(_ name: String, grid: Int, block: Int, _ arguments: [Argument]) {
        guard grid > 0 else { return }
        guard let f = functions[name] else { fatalError("CUDA backend: no kernel \(name)") }
        makeCurrent()
        var storage: [UnsafeMutableRawPointer] = []
        defer { storage.forEach { $0.deallocate() } }
        for a in arguments {
            func store<T>(_ v: T) {
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(MemoryLayout<T>.size, 8), alignment: 8)
                p.storeBytes(of: v, as: T.self)
                storage.append(p)
            }
            switch a {
            case .pointer(let v): store(v)
            case .i64(let v): store(Int64(v))
            case .i32(let v): store(v)
            case .u32(let v): store(v)
            case .u64(let v): store(v)
            case .f32(let v): store(v)
            case .bytes(let b):
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(b.count, 8), alignment: 8)
                b.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
                storage.append(p)
            }
        }
        var params: [UnsafeMutableRawPointer?] = storage.map { $0 }
        must(params.withUnsafeMutableBufferPointer { buffer in
            driver.api.cuLaunchKernel(f, UInt32(grid), 1, 1, UInt32(block), 1, 1, 0, stream, buffer.baseAddress, nil)
        }, "cuLaunchKernel(\(name), grid \(grid), block \(block))")
    }

    /// Blocks for a grid-stride kernel over `count` items (at most 65 536 blocks; the kernels loop past that).
    static func gridFor(_ count: Int, block: Int = 256) -> Int { min(max(1, (count + block - 1) / block), 1 << 16) }

    // MARK: GEMM (cuBLASLt: fp32 or bf16 operands, fp32 accumulation without TF32, fp32 out)

    /// Column-major `D[m, n] = α·op(A)·op(B) + β·C` with C = D: `a` is stored `[aRows, aCols]` (before op) with leading
    /// dimension `lda`, likewise `b`; `d` is `[m, n]` with `ldd`. `operands` is the element type of `a` and `b` (bf16:
    /// raw bf16 bits; the tensor cores multiply them exactly and accumulate in fp32); C and D are fp32 either way.
    /// `batch` > 1: that many products, the i-th at a + i·strideA, b + i·strideB, d + i·strideD (strides in elements).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: qlora_CUdeviceptr, lda: Int, b: qlora_CUdeviceptr, ldb: Int,
              d: qlora_CUdeviceptr, ldd: Int, beta: Float, operands: ComputePrecision = .fp32,
              batch: Int = 1, strideA: Int = 0, strideB: Int = 0, strideD: Int = 0) {
        makeCurrent()
        let api = lt.api
        func ok(_ s: qlora_cublasStatus, _ call: String) { if s != 0 { fatalError("CUDA backend: \(call): cuBLAS status \(s)") } }
        var desc: qlora_cublasLtMatmulDesc?
        ok(api.cublasLtMatmulDescCreate(&desc, Int32(QLORA_CUBLAS_COMPUTE_32F), Int32(QLORA_CUDA_R_32F)), "cublasLtMatmulDescCreate")
        defer { _ = api.cublasLtMatmulDescDestroy(desc) }
        var opA = Int32(transA ? QLORA_CUBLAS_OP_T : QLORA_CUBLAS_OP_N), opB = Int32(transB ? QLORA_CUBLAS_OP_T : QLORA_CUBLAS_OP_N)
        ok(api.cublasLtMatmulDescSetAttribute(desc, Int32(QLORA_CUBLASLT_MATMUL_DESC_TRANSA), &opA, 4), "TRANSA")
        ok(api.cublasLtMatmulDescSetAttribute(desc, Int32(QLORA_CUBLASLT_MATMUL_DESC_TRANSB), &opB, 4), "TRANSB")
        func layout(_ rows: Int, _ cols: Int, _ ld: Int, _ type: Int32, _ stride: Int) -> qlora_cublasLtMatrixLayout? {
            var l: qlora_cublasLtMatrixLayout?
            ok(api.cublasLtMatrixLayoutCreate(&l, type, UInt64(rows), UInt64(cols), Int64(ld)), "cublasLtMatrixLayoutCreate")
            if batch > 1 {
                var count = Int32(batch), offset = Int64(stride)
                ok(api.cublasLtMatrixLayoutSetAttribute(l, Int32(QLORA_CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT), &count, 4), "BATCH_COUNT")
                ok(api.cublasLtMatrixLayoutSetAttribute(l, Int32(QLORA_CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET), &offset, 8),
                   "STRIDED_BATCH_OFFSET")
            }
            return l
        }
        let input = Int32(operands == .bf16 ? QLORA_CUDA_R_16BF : QLORA_CUDA_R_32F), output = Int32(QLORA_CUDA_R_32F)
        let la = transA ? layout(k, m, lda, input, strideA) : layout(m, k, lda, input, strideA)
        let lb = transB ? layout(n, k, ldb, input, strideB) : layout(k, n, ldb, input, strideB)
        let ld = layout(m, n, ldd, output, strideD)
        defer { [la, lb, ld].forEach { _ = api.cublasLtMatrixLayoutDestroy($0) } }
        let key = "\(operands) \(transA)\(transB) \(m) \(n) \(k) \(lda) \(ldb) \(ldd) \(beta != 0) \(batch) \(strideA) \(strideB) \(strideD)"
        var algo = lock.withLock { algorithms[key] }
        if algo == nil {
            var pref: qlora_cublasLtMatmulPreference?
            ok(api.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate")
            defer { _ = api.cublasLtMatmulPreferenceDestroy(pref) }
            var bytes = UInt64(workspaceBytes)
            ok(api.cublasLtMatmulPreferenceSetAttribute(pref, Int32(QLORA_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES), &bytes, 8), "PREF_MAX_WORKSPACE")
            var result = qlora_cublasLtMatmulHeuristicResult()
            var returned: Int32 = 0
            ok(api.cublasLtMatmulAlgoGetHeuristic(ltHandle, desc, la, lb, ld, ld, pref, 1, &result, &returned), "cublasLtMatmulAlgoGetHeuristic(\(key))")
            guard returned > 0 else { fatalError("CUDA backend: cuBLASLt has no algorithm for \(key)") }
            algo = result.algo
            lock.withLock { algorithms[key] = result.algo }
        }
        var alpha: Float = 1, betaValue = beta
        var chosen = algo!
        ok(api.cublasLtMatmul(ltHandle, desc, &alpha, UnsafeRawPointer(bitPattern: UInt(a)), la, UnsafeRawPointer(bitPattern: UInt(b)), lb,
                              &betaValue, UnsafeRawPointer(bitPattern: UInt(d)), ld, UnsafeMutableRawPointer(bitPattern: UInt(d)), ld,
                              &chosen, UnsafeMutableRawPointer(bitPattern: UInt(workspace)), workspaceBytes, stream), "cublasLtMatmul(\(key))")
    }
}
