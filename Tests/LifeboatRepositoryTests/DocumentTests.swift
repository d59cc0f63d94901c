import Foundation
import LifeboatStorage
import Testing
@testable import LifeboatRepository

/// Recovery points and drill evidence: sealed, write-once, authenticated, mirrored.
@Suite struct DocumentTests {
    struct Note: Codable, Equatable {
        var text: String
        var time: Date
    }

    @Test func documentsAreSealedWriteOnceAndReadBack() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        let written = try await repository.writeDocument(Note(text: "tenant acme", time: Date()), in: .points, id: "p1")
        #expect(try await repository.loadDocument(Note.self, in: .points, id: "p1") == written)
        // Sealed: the plaintext does not appear in the stored object.
        let stored = try await backend.load("points/p1")
        #expect(stored.range(of: Data("tenant acme".utf8)) == nil)
        // Write-once.
        await #expect { try await repository.writeDocument(written, in: .points, id: "p1") } throws: { error in
            "\(error)".contains("points/p1")
        }
        // Bound to its name: evidence cannot be passed off as a point.
        try await backend.create("evidence/p1", data: stored)
        await #expect { try await repository.loadDocument(Note.self, in: .evidence, id: "p1") } throws: { ($0 as? RepositoryError)?.code == .corruptObject }
    }

    @Test func aDamagedDocumentIsReportedWithoutHidingTheOthers() async throws {
        let backend = MemoryBackend()
        let repository = try await makeRepository(backend)
        try await repository.writeDocument(Note(text: "a", time: Date()), in: .evidence, id: "e1")
        try await repository.writeDocument(Note(text: "b", time: Date()), in: .evidence, id: "e2")
        await backend.corrupt("evidence/e1", with: Data("garbage".utf8))
        let (documents, unreadable) = try await repository.documents(Note.self, in: .evidence)
        #expect(documents.map(\.text) == ["b"])
        #expect(unreadable.map(\.object) == ["evidence/e1"])
    }

    @Test func mirrorCopiesPointsAndEvidenceButNotDamagedOnes() async throws {
        let source = MemoryBackend(), target = MemoryBackend()
        let repository = try await makeRepository(source)
        try await repository.writeDocument(Note(text: "point", time: Date()), in: .points, id: "p1")
        try await repository.writeDocument(Note(text: "drill", time: Date()), in: .evidence, id: "e1")
        let run = try await repository.mirror(to: target)
        #expect(run.copiedDocuments == 2)
        let replica = try await Repository.open(backend: target, passphrase: "correct horse")
        #expect(try await replica.loadDocument(Note.self, in: .evidence, id: "e1").text == "drill")
        #expect(try await repository.mirror(to: target).copiedDocuments == 0)

        try await repository.writeDocument(Note(text: "later", time: Date()), in: .points, id: "p2")
        await source.corrupt("points/p2", with: Data("garbage".utf8))
        await #expect { try await repository.mirror(to: target) } throws: { ($0 as? RepositoryError)?.object == "points/p2" }
        #expect(try await target.stat("points/p2") == nil)
    }
}
