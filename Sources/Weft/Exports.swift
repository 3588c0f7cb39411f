// `import Weft` is all an app needs to model data: the documents, the Codable bridge and its
// property wrappers (`@Counter`, …), clocks and identities come from WeftCRDT with it.
@_exported import WeftCRDT
