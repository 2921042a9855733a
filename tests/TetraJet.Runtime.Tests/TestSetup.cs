// Several tests seed torch's global generator and compare two runs; classes running in parallel would draw from it
// in between. One at a time, as in the models' tests.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: TetraJet.Tests.TensorScopePerTest]
