import NIOSSL
import Weft

// HTTPS: the server terminates TLS itself when `[server]` names a certificate and its key.
extension StandaloneServer {
    /// The TLS configuration `configuration` asks for (`tls_certificate` and `tls_key`, PEM
    /// files), or `nil` for plain HTTP. TLS 1.2 at least.
    /// - Throws: `ConfigurationError` when a file cannot be read as PEM.
    public static func tlsConfiguration(_ configuration: ServerConfiguration) throws(ConfigurationError) -> TLSConfiguration? {
        guard let certificate = configuration.tlsCertificateFile, let key = configuration.tlsKeyFile else { return nil }
        let chain: [NIOSSLCertificateSource]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
        } catch {
            throw ConfigurationError(key: "server.tls_certificate", expected: "a PEM file of the certificate chain", found: "\(certificate): \(error)")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(key: "server.tls_certificate", expected: "a PEM file of the certificate chain", found: "\(certificate): no certificate")
        }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw ConfigurationError(key: "server.tls_key", expected: "a PEM file of the certificate's private key", found: "\(key): \(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        tls.minimumTLSVersion = .tlsv12
        return tls
    }
}
