/// A name or metadata value from the data, made safe to print on a terminal or in a
/// one-line message (as `ls` and `git` do): control characters (C0, DEL, C1), line and
/// paragraph separators and bidirectional overrides are written as escapes, and a backslash
/// is doubled, so that no byte of the data can move the cursor, forge a line or recolour
/// the terminal. Printable text is unchanged.
public func escaped(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: needsEscape) else { return s }
    var out = ""
    for u in s.unicodeScalars {
        guard needsEscape(u) else { out.unicodeScalars.append(u); continue }
        switch u {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            let hex = String(u.value, radix: 16)
            out += u.value < 0x100 ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                                   : "\\u{" + hex + "}"
        }
    }
    return out
}

private func needsEscape(_ u: Unicode.Scalar) -> Bool {
    switch u.value {
    case 0x5C: return true                                   // backslash: escapes stay unambiguous
    case 0..<0x20, 0x7F..<0xA0: return true                  // C0, DEL, C1
    case 0x2028, 0x2029: return true                         // line and paragraph separators
    case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi marks and overrides
    default: return false
    }
}
