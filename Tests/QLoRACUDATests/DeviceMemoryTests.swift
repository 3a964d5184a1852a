import Testing
@testable import QLoRACUDA

/// The counter behind the CUDA backend's "peak device" figure (`qlora bench train`), checked without a GPU.
@Suite struct DeviceMemoryCounterTests {
    @Test func peakIsTheMostHeldAtOnceAndResetsToWhatIsHeld() {
        var c = DeviceMemoryCounter()
        c.allocated(100)
        c.allocated(50)
        c.freed(100)
        #expect(c.inUse == 50 && c.peak == 150)
        c.allocated(70)
        #expect(c.inUse == 120 && c.peak == 150)
        c.resetPeak()
        #expect(c.peak == 120)
        c.allocated(40)
        c.freed(40)
        c.freed(120)
        #expect(c.inUse == 0 && c.peak == 160)
    }
}

/// The CUDA backend's cache of freed device blocks, checked without a GPU (the pointers are just numbers here).
@Suite struct DeviceBlockCacheTests {
    @Test func sizeClassesRoundUpByLessThanAnEighth() {
        #expect(DeviceBlockCache.sizeClass(0) == 512)
        #expect(DeviceBlockCache.sizeClass(1) == 512)
        #expect(DeviceBlockCache.sizeClass(513) == 1024)
        #expect(DeviceBlockCache.sizeClass(8192) == 8192)
        #expect(DeviceBlockCache.sizeClass(8193) == 9216)
        #expect(DeviceBlockCache.sizeClass(1 << 30) == 1 << 30)
        for n in stride(from: 1, to: 50_000_000, by: 9_973) {
            let c = DeviceBlockCache.sizeClass(n)
            #expect(c >= n && (c - n) * 8 < max(n, 4096), "\(n) → \(c)")
            #expect(DeviceBlockCache.sizeClass(c) == c, "a class is its own class: \(c)")
        }
    }

    @Test func blocksAreReusedOnlyWithinTheirClassAndDrainEmptiesTheCache() {
        var cache = DeviceBlockCache()
        #expect(cache.take(1024) == nil)
        cache.put(0x1000, size: 1024)
        cache.put(0x2000, size: 1024)
        cache.put(0x9000, size: 9216)
        #expect(cache.bytes == 11264)
        #expect(cache.take(512) == nil)
        #expect(cache.take(1024) == 0x2000)
        #expect(cache.bytes == 10240)
        #expect(Set(cache.drain()) == [0x1000, 0x9000])
        #expect(cache.bytes == 0 && cache.take(1024) == nil && cache.take(9216) == nil)
    }
}
