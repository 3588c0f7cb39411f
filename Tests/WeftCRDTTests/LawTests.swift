import Testing
import WeftCRDT
import WeftTesting

/// Every built-in type passes every law checker, 200 histories per law.
@Suite("Merge laws of the built-in CRDTs")
struct LawTests {
    @Test func lwwRegister() async { await CRDTLawChecker.checkAll(CRDTModels.lwwRegister) }
    @Test func mvRegister() async { await CRDTLawChecker.checkAll(CRDTModels.mvRegister) }
    @Test func gCounter() async { await CRDTLawChecker.checkAll(CRDTModels.gCounter) }
    @Test func pnCounter() async { await CRDTLawChecker.checkAll(CRDTModels.pnCounter) }
    @Test func orSet() async { await CRDTLawChecker.checkAll(CRDTModels.orSet) }
    @Test func lwwMap() async { await CRDTLawChecker.checkAll(CRDTModels.lwwMap) }
    @Test func orMap() async { await CRDTLawChecker.checkAll(CRDTModels.orMap) }
    @Test func document() async { await CRDTLawChecker.checkAll(CRDTModels.document) }
}
