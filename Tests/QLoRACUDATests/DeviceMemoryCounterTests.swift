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
