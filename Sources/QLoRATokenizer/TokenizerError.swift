/// A problem loading or running a tokenizer, naming the file and the JSON path (`model.merges[17]`).
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var path: String
    public var message: String

    public init(file: String, path: String, _ message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}
