import AsyncHTTPClient
import NIOCore

extension HTTPClient {
    /// A client for talking to the stores' own servers (OpenBao, the etcd gateway). A refused
    /// connect fails the request at once: the pool's own reconnect loop would otherwise hold a
    /// request to a dead node until its deadline, when "this node does not answer" is a fact the
    /// guards decide on (or the cue to try the next endpoint). Redirects are not followed: a token
    /// must not be resent to another host.
    static func failingFast(connect: TimeAmount, read: TimeAmount? = nil) -> HTTPClient {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: connect, read: read), connectionPool: pool, decompression: .disabled)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }
}
