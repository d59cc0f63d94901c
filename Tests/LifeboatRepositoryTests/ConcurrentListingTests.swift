import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// Listing snapshots while a prune deletes some (the scheduler prunes after every backup while
/// people run `snapshots` and `status`): a manifest listed and then deleted is not damage; one
/// still listed but missing when read is.
@Suite struct ConcurrentListingTests {
    /// Makes the manifest `victim` go missing when it is first read: `deleteIt` removes it from the
    /// storage then (as a concurrent prune does), otherwise it stays listed but cannot be read.
    struct VanishingManifest: Backend {
        let base: any Backend
        let victim: String
        let deleteIt: Bool
        var location: String { base.location }
        func create(_ name: String, data: Data) async throws(BackendError) { try await base.create(name, data: data) }
        func replace(_ name: String, data: Data) async throws(BackendError) { try await base.replace(name, data: data) }
        func load(_ name: String, range: Range<Int>?) async throws(BackendError) -> Data {
            guard name == victim else { return try await base.load(name, range: range) }
            if deleteIt { try? await base.delete(name) }
            throw BackendError(.notFound, object: name, "not found")
        }
        func stat(_ name: String) async throws(BackendError) -> ObjectInfo? { try await base.stat(name) }
        func list(prefix: String) async throws(BackendError) -> [ObjectInfo] { try await base.list(prefix: prefix) }
        func delete(_ name: String) async throws(BackendError) { try await base.delete(name) }
    }

    @Test(arguments: [true, false])
    func aManifestDeletedWhileListingIsNotDamage(deletedByAPrune: Bool) async throws {
        let storage = MemoryBackend()
        let repository = try await makeRepository(storage)
        let first = try await repository.put(SnapshotDescription(store: "etcd"), read: reader(Array("first".utf8)))
        let second = try await repository.put(SnapshotDescription(store: "etcd"), read: reader(Array("second".utf8)))
        let vanishing = VanishingManifest(base: storage, victim: ObjectPath.snapshot(first.id), deleteIt: deletedByAPrune)
        let listing = try await Repository.open(backend: vanishing, passphrase: "correct horse").snapshots()
        #expect(listing.manifests.map(\.id) == [second.id])
        if deletedByAPrune {
            #expect(listing.unreadable.isEmpty, "deleted between the listing and the read: \(listing.unreadable)")
        } else {
            #expect(listing.unreadable.map(\.code) == [.missingObject], "listed but unreadable is reported")
        }
    }
}
