/// Sorting and joining for code on the launch path.
///
/// The standard library's `sorted` and `joined(separator:)` run prebuilt generic code that,
/// on its first use in a process, looks a protocol conformance up at run time: a linear scan
/// of every conformance record in the binary, about 0.1 ms each in the release `corral`, paid
/// again by every launch. These are compiled in this package instead (specialised here,
/// their metadata reached directly; see `launchPathSettings` in Package.swift). Inlinable and
/// on arrays, so each caller gets a specialised copy: an unspecialised generic body reaches
/// the same run-time lookups through its own conversions.

/// `items` in increasing order by `areInIncreasingOrder`; equal elements keep their order.
/// A bottom-up merge sort.
@inlinable
public func stableSorted<T>(_ items: [T], by areInIncreasingOrder: (T, T) -> Bool) -> [T] {
    var items = items
    var buffer = items
    var width = 1
    while width < items.count {
        var start = 0
        while start < items.count {
            let middle = min(start + width, items.count), end = min(start + 2 * width, items.count)
            var left = start, right = middle
            for slot in start..<end {
                // Take from the left run unless the right one's head is strictly smaller.
                if left < middle && (right == end || !areInIncreasingOrder(items[right], items[left])) {
                    buffer[slot] = items[left]
                    left += 1
                } else {
                    buffer[slot] = items[right]
                    right += 1
                }
            }
            start = end
        }
        swap(&items, &buffer)
        width *= 2
    }
    return items
}

/// `strings` in increasing order.
@inlinable
public func stableSorted(_ strings: [String]) -> [String] {
    stableSorted(strings, by: <)
}

/// `parts` with `separator` between them.
@inlinable
public func joinedStrings(_ parts: [String], separator: String) -> String {
    var out = ""
    var first = true
    for part in parts {
        if !first { out.append(separator) }
        out.append(part)
        first = false
    }
    return out
}
