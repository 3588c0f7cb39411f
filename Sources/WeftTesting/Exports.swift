@_exported import WeftCRDT
