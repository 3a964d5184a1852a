// `strftime_now(format)`: transformers passes `datetime.now().strftime(format)`, a naive local
// time, so `%Z` and `%z` are empty. Directives follow glibc's C locale, including the `%-d`
// (no padding) flag that Linux supports.

import Foundation

enum TemplateStrftime {
    private static let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]

    static func format(_ format: String, _ date: Date, _ timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let year = c.year ?? 1970
        let month = c.month ?? 1
        let day = c.day ?? 1
        let hour = c.hour ?? 0
        let minute = c.minute ?? 0
        let second = c.second ?? 0
        let weekday0 = (c.weekday ?? 1) - 1  // 0 = Sunday
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        let hour12 = hour % 12 == 0 ? 12 : hour % 12

        func pad(_ v: Int, _ width: Int, _ noPad: Bool, _ fill: Character = "0") -> String {
            let s = String(v)
            if noPad || s.count >= width { return s }
            return String(repeating: fill, count: width - s.count) + s
        }

        var out = ""
        var it = Array(format).makeIterator()
        while let ch = it.next() {
            guard ch == "%" else {
                out.append(ch)
                continue
            }
            guard var d = it.next() else {
                out.append("%")
                break
            }
            var noPad = false
            if d == "-" {
                noPad = true
                guard let next = it.next() else {
                    out += "%-"
                    break
                }
                d = next
            }
            switch d {
            case "a": out += String(days[weekday0].prefix(3))
            case "A": out += days[weekday0]
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "B": out += months[month - 1]
            case "c":
                out += "\(days[weekday0].prefix(3)) \(months[month - 1].prefix(3)) \(pad(day, 2, false, " ")) "
                    + "\(pad(hour, 2, false)):\(pad(minute, 2, false)):\(pad(second, 2, false)) \(year)"
            case "C": out += pad(year / 100, 2, noPad)
            case "d": out += pad(day, 2, noPad)
            case "D": out += "\(pad(month, 2, false))/\(pad(day, 2, false))/\(pad(year % 100, 2, false))"
            case "e": out += pad(day, 2, noPad, " ")
            case "F": out += "\(pad(year, 4, false))-\(pad(month, 2, false))-\(pad(day, 2, false))"
            case "H": out += pad(hour, 2, noPad)
            case "I": out += pad(hour12, 2, noPad)
            case "j": out += pad(dayOfYear, 3, noPad)
            case "k": out += pad(hour, 2, noPad, " ")
            case "l": out += pad(hour12, 2, noPad, " ")
            case "m": out += pad(month, 2, noPad)
            case "M": out += pad(minute, 2, noPad)
            case "n": out += "\n"
            case "p": out += hour < 12 ? "AM" : "PM"
            case "r": out += "\(pad(hour12, 2, false)):\(pad(minute, 2, false)):\(pad(second, 2, false)) \(hour < 12 ? "AM" : "PM")"
            case "R": out += "\(pad(hour, 2, false)):\(pad(minute, 2, false))"
            case "S": out += pad(second, 2, noPad)
            case "t": out += "\t"
            case "T": out += "\(pad(hour, 2, false)):\(pad(minute, 2, false)):\(pad(second, 2, false))"
            case "u": out += String(weekday0 == 0 ? 7 : weekday0)
            case "w": out += String(weekday0)
            case "x": out += "\(pad(month, 2, false))/\(pad(day, 2, false))/\(pad(year % 100, 2, false))"
            case "X": out += "\(pad(hour, 2, false)):\(pad(minute, 2, false)):\(pad(second, 2, false))"
            case "y": out += pad(year % 100, 2, noPad)
            case "Y": out += String(year)
            case "z", "Z": break
            case "%": out += "%"
            default:
                out += noPad ? "%-" : "%"
                out.append(d)
            }
        }
        return out
    }
}
