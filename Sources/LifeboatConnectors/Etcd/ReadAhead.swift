import Foundation

/// Runs `body` with a sequence that yields `base`'s blocks, read up to `limit` blocks ahead by a child
/// task: receiving and decoding the stream then overlaps with what `body` does with each block
/// (chunking, compressing, sealing), and memory stays bounded by `limit` blocks.
func withReadAhead<Base: AsyncSequence & Sendable, T>(
    _ base: Base, limit: Int, _ body: (ReadAheadBlocks) async throws -> T
) async throws -> T where Base.Element == Data {
    let queue = BlockQueue(capacity: limit)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            do {
                for try await block in base {
                    guard await queue.push(.success(block)) else { return }
                }
                _ = await queue.push(.success(nil))
            } catch {
                _ = await queue.push(.failure(error))
            }
        }
        do {
            let result = try await body(ReadAheadBlocks(queue: queue))
            await queue.close()
            group.cancelAll()
            return result
        } catch {
            // The reader may be waiting for room: release it, and stop the stream.
            await queue.close()
            group.cancelAll()
            throw error
        }
    }
}

/// The consuming side of `withReadAhead`.
struct ReadAheadBlocks: AsyncSequence {
    typealias Element = Data
    let queue: BlockQueue

    func makeAsyncIterator() -> Iterator { Iterator(queue: queue) }

    struct Iterator: AsyncIteratorProtocol {
        let queue: BlockQueue
        var finished = false
        mutating func next() async throws -> Data? {
            guard !finished else { return nil }
            let block = try await queue.pop().get()
            if block == nil { finished = true }
            return block
        }
    }
}

/// A bounded queue between one producer and one consumer; `nil` marks the end.
actor BlockQueue {
    private var items: [Result<Data?, any Error>] = []
    private var waitingConsumer: CheckedContinuation<Result<Data?, any Error>, Never>?
    private var waitingProducer: CheckedContinuation<Void, Never>?
    private var closed = false
    let capacity: Int

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    /// Hands over an item, waiting while the queue is full; false once the consumer has gone.
    func push(_ item: Result<Data?, any Error>) async -> Bool {
        guard !closed else { return false }
        if let consumer = waitingConsumer {
            waitingConsumer = nil
            consumer.resume(returning: item)
            return true
        }
        items.append(item)
        if items.count >= capacity {
            await withCheckedContinuation { waitingProducer = $0 }
        }
        return !closed
    }

    func pop() async -> Result<Data?, any Error> {
        if !items.isEmpty {
            let item = items.removeFirst()
            if let producer = waitingProducer {
                waitingProducer = nil
                producer.resume()
            }
            return item
        }
        return await withCheckedContinuation { waitingConsumer = $0 }
    }

    /// The consumer is done: a waiting producer is released and later pushes are refused.
    func close() {
        closed = true
        items.removeAll()
        waitingProducer?.resume()
        waitingProducer = nil
    }
}
