import Foundation
#if canImport(Glibc)
import Glibc
private let systemRead = Glibc.read(_:_:_:)
#else
import Darwin
private let systemRead = Darwin.read(_:_:_:)
#endif

extension FileHandle {
    /// The next `count` bytes (fewer only at the end of the input), or nil at its end.
    ///
    /// Calls read(2) straight into the block it returns. Foundation's `read(upToCount:)` on Linux
    /// reads 4 KiB per system call and appends each piece to the result: 262,144 calls and as many
    /// copies per GiB, which made a local `put` spend more time in the kernel than in its own work.
    public func readBlock(upToCount count: Int) throws -> Data? {
        precondition(count > 0)
        guard let buffer = malloc(count) else { throw POSIXError(.ENOMEM) }
        var filled = 0
        while filled < count {
            let got = systemRead(fileDescriptor, buffer + filled, count - filled)
            if got > 0 {
                filled += got
            } else if got == 0 {
                break
            } else if errno != EINTR {
                let code = errno
                free(buffer)
                throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
            }
        }
        guard filled > 0 else {
            free(buffer)
            return nil
        }
        return Data(bytesNoCopy: buffer, count: filled, deallocator: .free)
    }
}
