import Testing
@testable import QLoRAFormats
@testable import QLoRAPipeline

@Suite struct NormalizerTests {
    private func reason(_ format: DatasetFormat, _ json: String, fieldMap: [String: String] = [:]) throws -> RejectionReason? {
        let value = try JSONParser.parse(json)
        if case .failure(let r) = ExampleNormalizer(format: format, fieldMap: fieldMap).normalize(value) { return r.reason }
        return nil
    }

    @Test(arguments: [
        (DatasetFormat.alpaca, #"{"output":"o"}"#, RejectionReason.missingField),
        (.alpaca, #"{"instruction":"  ","output":"o"}"#, .emptyField),
        (.alpaca, #"{"instruction":"i","input":3,"output":"o"}"#, .wrongType),
        (.chat, #"[1]"#, .notAnObject),
        (.chat, #"{"messages":"hi"}"#, .wrongType),
        (.chat, #"{"messages":[]}"#, .emptyField),
        (.chat, #"{"messages":[{"role":"bot","content":"x"}]}"#, .unknownRole),
        (.chat, #"{"messages":[{"role":"user","content":"x"}]}"#, .noAssistantMessage),
        (.chat, #"{"messages":[{"role":"user"}]}"#, .missingField),
        (.completion, #"{"prompt":"p","completion":""}"#, .emptyField),
        (.guanaco, ####"{"text":"### Assistant: no human first"}"####, .malformedGuanaco),
        (.guanaco, ####"{"text":"### Human: only a question"}"####, .malformedGuanaco),
        (.guanaco, ####"{"text":"### Human: a### Human: b"}"####, .malformedGuanaco),
        (.text, #"{"text":null}"#, .wrongType),
    ])
    func rejectsWithTheRightReason(format: DatasetFormat, json: String, expected: RejectionReason) throws {
        #expect(try reason(format, json) == expected)
    }

    @Test func acceptsValidRowsAndHonoursFieldMap() throws {
        #expect(try reason(.alpaca, #"{"instruction":"i","input":null,"output":"o"}"#) == nil)
        #expect(try reason(.chat, #"{"conv":[{"from":"user","value":"q"},{"from":"assistant","value":"a"}]}"#,
                           fieldMap: ["messages": "conv", "role": "from", "content": "value"]) == nil)
        #expect(try reason(.completion, #"{"prompt":"","completion":"c"}"#) == nil)
    }

    @Test func guanacoTurnsAreSplitAndTrimmed() throws {
        let turns = try ExampleNormalizer.guanacoTurns("  ### Human: What is 2+2?\n### Assistant: 4.\n### Human: Sure?### Assistant: Yes ")
        #expect(turns.map(\.content) == ["What is 2+2?", "4.", "Sure?", "Yes"])
        #expect(turns.map(\.role) == [.user, .assistant, .user, .assistant])
    }

    @Test func idIsAContentHashIndependentOfSource() throws {
        var a: [UInt8] = [], b: [UInt8] = []
        Example.canonicalContent(.text("same"), into: &a)
        Example.canonicalContent(.text("same"), into: &b)
        #expect(a == b)
        #expect(String(decoding: a, as: UTF8.self) == #"{"text":"same"}"#)
    }
}
