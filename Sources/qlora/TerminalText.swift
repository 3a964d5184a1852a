import Foundation

/// Text that reaches the terminal may come from a user's files (a spec's name, paths, dataset rows in
/// rejection reports, error messages, events.jsonl): C0 and C1 control characters other than tab and
/// newline, and DEL, are written as `\u{1B}`-style escapes, so no file can move the cursor, retitle the
/// window or hide output with escape sequences. Applied where the CLI prints (`printSafe`,
/// `printError` in Sources/qlora/Qlora.swift, the progress renderer, the top-level error in main.swift).
func terminalSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        if isControl(scalar) {
            out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
        } else {
            out.append(scalar)
        }
    }
    return String(out)
}

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    let v = scalar.value
    if v == 0x09 || v == 0x0A { return false }
    return v < 0x20 || (0x7F...0x9F).contains(v)
}

/// `print` for lines that may hold user-controlled text.
func printSafe(_ text: String) {
    print(terminalSafe(text))
}
