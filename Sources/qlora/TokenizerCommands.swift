import ArgumentParser
import Foundation
import QLoRAFormats
import QLoRATokenizer

/// Loads a tokenizer for a CLI command; errors exit 2 with the file and JSON path.
func loadTokenizer(_ path: String) throws -> Tokenizer {
    do {
        return try Tokenizer.load(path: path)
    } catch {
        printError("error: \(error)")
        throw ExitCode(2)
    }
}

struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Encode UTF-8 text from stdin, one input per line, printing one JSON array of ids per line.",
        discussion: "Ids equal Hugging Face tokenizers' `encode(line, add_special_tokens=True)`.")

    @Option(help: "A tokenizer.json, a model directory or a .gguf file.")
    var tokenizer: String

    @Flag(help: "Treat added/special tokens as plain text and skip post-processing (no BOS/EOS added).")
    var noSpecial = false

    func run() throws {
        let tok = try loadTokenizer(tokenizer)
        var out = ""
        while let line = readLine(strippingNewline: true) {
            let ids = tok.encode(line, addSpecialTokens: !noSpecial, matchSpecial: !noSpecial)
            out += "[" + ids.map(String.init).joined(separator: ",") + "]\n"
            if out.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode JSON arrays of ids from stdin (one per line), printing the text of each (newlines escaped as \\n).")

    @Option(help: "A tokenizer.json, a model directory or a .gguf file.")
    var tokenizer: String

    @Flag(help: "Drop special tokens from the output.")
    var skipSpecial = false

    @Flag(help: "Print each text as a JSON string instead of escaping only newlines.")
    var json = false

    func run() throws {
        let tok = try loadTokenizer(tokenizer)
        var number = 0
        while let line = readLine(strippingNewline: true) {
            number += 1
            guard case .array(let items)? = try? JSONParser.parse(line),
                  let ids = Optional(items.compactMap { v -> Int? in if case .number(let d) = v, d >= 0, d == d.rounded() { return Int(d) }; return nil }),
                  ids.count == items.count else {
                printError("error: stdin:\(number): expected a JSON array of non-negative integer ids")
                throw ExitCode(2)
            }
            let text = tok.decode(ids, skipSpecialTokens: skipSpecial)
            if json {
                var bytes: [UInt8] = []
                JSONWriter.writeString(text, into: &bytes)
                print(String(decoding: bytes, as: UTF8.self))
            } else {
                print(text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))
            }
        }
    }
}

struct ChatTemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-template",
        abstract: "Render a conversation with the tokenizer's chat template (or a built-in one) and print the prompt.")

    @Option(help: "A tokenizer.json (with tokenizer_config.json beside it), a model directory or a .gguf file.")
    var tokenizer: String

    @Option(help: "A JSON file: a list of {role, content} messages, or an object with `messages`.")
    var messages: String

    @Flag(help: "Append the generation prompt (the assistant header) as inference does.")
    var addGenerationPrompt = false

    @Option(help: "model (the tokenizer's own), chatml, llama3 or alpaca.")
    var template: String = "model"

    func run() throws {
        let tok = try loadTokenizer(tokenizer)
        guard let data = FileManager.default.contents(atPath: messages) else {
            printError("error: \(messages): cannot read")
            throw ExitCode(2)
        }
        let value: JSONValue
        do { value = try JSONParser.parse(Array(data)) } catch {
            printError("error: \(messages): \(error)")
            throw ExitCode(2)
        }
        var list = value
        if case .object(let o) = value, let m = o["messages"] { list = m }
        guard case .array(let items) = list else {
            printError("error: \(messages): expected a list of messages or an object with `messages`")
            throw ExitCode(2)
        }
        var parsed: [Example.Message] = []
        for (i, item) in items.enumerated() {
            guard case .object(let m) = item, case .string(let r)? = m["role"], let role = Example.Role(rawValue: r),
                  case .string(let content)? = m["content"] else {
                printError("error: \(messages): messages[\(i)] needs a role (system, user, assistant) and a string content")
                throw ExitCode(2)
            }
            parsed.append(Example.Message(role: role, content: content))
        }
        do {
            let formatter = try ChatFormatter(tokenizer: tok, choice: template)
            FileHandle.standardOutput.write(Data(try formatter.render(parsed, addGenerationPrompt: addGenerationPrompt).utf8))
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
