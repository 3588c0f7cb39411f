import Testing
import WeftCRDT
import WeftTesting
import PropertyBased

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

    /// Known issue, found by CI on 2026-12-05 (the law checker draws new histories each run):
    /// in this history a register write is hidden, after a merge, by a set part of the same
    /// field that the model does not count as a concurrent write of a higher kind ('b =
    /// 9223372036854775807' lost; the merged field holds the register and a set part). Either
    /// the document keeps a set part it should have dropped, or the model misses the write that
    /// made it; open. The known issue is strict: when it stops failing, this test fails.
    @Test(.fixedSeed("OU65K8qfweugUuz507n//qTlK4oOKl9GYCEzhMrzNuw="))
    func documentHistoryWithARegisterHiddenByASetPart() async {
        await withKnownIssue("a register write hidden by a set part the model does not explain") {
            await CRDTLawChecker.checkAll(CRDTModels.document)
        }
    }
}
